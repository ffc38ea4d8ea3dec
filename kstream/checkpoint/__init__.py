"""The checkpoint commit of a task and the task metadata it carries."""
