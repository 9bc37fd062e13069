"""The kernel: runs learning jobs, owns run directories, checkpoints, the store and the scheduler."""
