"""The numeric precisions a network can run in (``--precision``), kept apart from :mod:`srprep.infer` so that
the command line can offer them without importing torch."""

#: fp32; tf32 (fp32 storage, TF32 matmuls and convolutions on NVIDIA GPUs); bf16 and fp16 autocast.
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
#: The precisions a CPU runs (tf32 and fp16 autocast are GPU features).
CPU_PRECISIONS = ("fp32", "bf16")
