"""The pieces of ``scripts/bench``: one module per figure, plus what they share.

- `modes`: the sizes and repetitions of ``--quick`` and full runs, in one place.
- `procs`: child processes (setup and timed commands, the coordinator), every one with a
  timeout and stopped by its PID.
- `mounts`: `leasefs mount` and bindfs mounts, always taken away again.
- `tree`: the generated git repository the filesystem figures run on.
- `stats`, `report`: medians, percentiles, ratios; markdown and JSON output.
- `fs_overhead`, `lease_latency`, `coordinator_scale`: figures 1, 2 and 3.

Nothing here asserts a time: every figure is printed next to its reference, measured in the
same run, so a reader sees ratios rather than absolute numbers from an unknown machine.
"""
