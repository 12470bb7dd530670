"""Step 1-2 of the pipeline: raw logs -> parsed.parquet (Drain3), DeepLog sequences, MSCRED counts; the demo generator."""
