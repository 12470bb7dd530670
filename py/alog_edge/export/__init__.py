"""Step 4: checkpoints -> the model directory (ONNX, meta.json, C-form vocab, parser.json, golden.json)."""
