"""The commands of ``llmagentos`` beside the ones :mod:`llmagentos.cli` defines itself, grouped by what they act on."""
