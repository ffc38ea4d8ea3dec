"""The pipeline spec: models, YAML loading with positions, validation, durations, views."""
