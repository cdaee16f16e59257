"""Quality control: particle counts per mL by class and size, and USP <788> verdicts."""
