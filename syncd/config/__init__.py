"""The configuration: syncd.yaml, fields.yaml and stages.yaml, read, checked and described."""
