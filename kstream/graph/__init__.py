"""The logical graph and the planner: stages, repartitions, names of topics, stores and ids."""
