"""Generate the Python stubs of the render.v1 contract into gen/python (checked in).

Run with `make proto`. CI regenerates and fails when the tree changes ("protos are stale").
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
OUT = ROOT / "gen" / "python"
PACKAGE_DIR = OUT / "render"


def main() -> int:
    """Regenerate every .proto under protos/ and make the output an importable package."""
    # protoc finds the mypy-protobuf and connectrpc plugins next to this interpreter.
    bin_dir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    shutil.rmtree(PACKAGE_DIR, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"--python_out={OUT}",
        f"--mypy_out={OUT}",
        f"--grpc_python_out={OUT}",
        f"--mypy_grpc_out={OUT}",
        # Connect (connectrpc) stubs for the edge, over the google.protobuf classes above.
        f"--connectrpc_out={OUT}",
        "--connectrpc_opt=protobuf=google",
        *protos,
    ]
    code = protoc.main(args)
    if code != 0:
        return int(code)
    for directory in [PACKAGE_DIR, *(p for p in PACKAGE_DIR.rglob("*") if p.is_dir())]:
        init = directory / "__init__.py"
        init.write_text('"""Generated render.v1 protobuf stubs (make proto)."""\n')
        (directory / "py.typed").touch()
    return 0


if __name__ == "__main__":
    sys.exit(main())
