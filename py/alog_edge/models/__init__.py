"""The torch modules (DeepLog, MSCRED) and DeepLog's decision rule."""
