"""Speed and scale measurements, printed as ratios against a reference timed in the same run."""
