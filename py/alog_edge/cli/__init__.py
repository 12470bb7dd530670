"""What tasks.py calls: flag specs, the one error path, and the bodies of the pipeline's, runtime's and devices' tasks."""
