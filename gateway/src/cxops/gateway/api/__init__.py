"""The gateway's own endpoints: keys, audit, health and the suite's documentation."""
