"""Where runs live: Slurm job and step identities, run-dir names per rank, and finding the run that ``ckpt_path=last`` resumes."""
