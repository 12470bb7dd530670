"""Step 3: training loops (seeded, early stopping, calibration of the decision rule)."""
