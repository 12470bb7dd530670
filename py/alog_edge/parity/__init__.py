"""The C runtime beside Python: verdict parity on the same model directory, and the benchmark."""
