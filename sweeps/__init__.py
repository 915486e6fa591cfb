"""The user's floor: the sweep file and the ``sweep`` command line."""
