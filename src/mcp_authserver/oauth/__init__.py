"""Protocol rules as plain functions, one module per RFC. Nothing here does I/O or knows Starlette."""
