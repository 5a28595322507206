"""What the canteen keeps by hand in the dashboard: the 留样 register (`samples.py`)."""
