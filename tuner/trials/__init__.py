"""Running trials at what they must cost: the shared head phase, the prefix cache, the trial process."""
