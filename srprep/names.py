"""Names the command line offers for work that needs torch (network precisions, checkpoint export formats),
kept apart from the modules that do that work so that the command line starts without importing torch."""

#: fp32; tf32 (fp32 storage, TF32 matmuls and convolutions on NVIDIA GPUs); bf16 and fp16 autocast.
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
#: The precisions a CPU runs (tf32 and fp16 autocast are GPU features).
CPU_PRECISIONS = ("fp32", "bf16")
#: Checkpoint formats ``srprep export`` writes (:func:`srprep.models.export.export_weights`).
EXPORT_FORMATS = ("basicsr", "edsr", "safetensors")
