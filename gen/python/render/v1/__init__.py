"""Generated render.v1 protobuf stubs (make proto)."""
