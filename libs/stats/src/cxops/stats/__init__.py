"""Pure statistics for the domain cores: the survey scales (:mod:`cxops.stats.scales`) and honest
error bars (:mod:`cxops.stats.inference`). Standard library only, no I/O."""
