"""retail_common: the store model, validated parameters, node support, the executor and CLI output helpers shared by every package."""
