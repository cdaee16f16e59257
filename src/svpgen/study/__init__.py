"""The study: Table 1 datasets, the classifier grid (local or Ray Tune), the Table 2 report."""
