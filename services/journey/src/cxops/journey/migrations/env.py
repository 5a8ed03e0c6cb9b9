from cxops.common.migrations import run_env

run_env(target_metadata=None)
