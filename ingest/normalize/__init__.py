"""Pure normalizers: a vendor's payload → rows for the database, nothing else."""
