"""Build the compiled data plane (everything else about the package is in pyproject.toml).

The module needs only gcc and Python's headers: OpenSSL's libcrypto is
opened at run time (csrc/crypto.c), so libssl-dev is not a build
dependency. ``VIDEOROOMD_SANITIZE=1`` builds it with AddressSanitizer and
UndefinedBehaviorSanitizer for .ci/sanitize.sh.
"""

import os

from setuptools import Extension, setup

SOURCES = ["module.c", "srtp.c", "srtp_gcm.c", "crypto.c", "parse.c", "port.c", "port_io.c", "port_fast.c", "port_fast_py.c", "port_tap.c",
           "plane.c", "plane_forward.c", "plane_rewrite.c", "plane_module.c", "plane_stats.c",
           "plane_route.c", "remb.c", "remb_py.c", "feedback.c", "feedback_py.c"]
CSRC = "videoroomd/media/dataplane/csrc"

compile_args = ["-std=c11", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-fvisibility=hidden"]
link_args: list[str] = []
if os.environ.get("VIDEOROOMD_SANITIZE") == "1":
    sanitize = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]
    compile_args += sanitize + ["-O1", "-g"]
    link_args += sanitize
else:
    compile_args += ["-O2"]

setup(
    ext_modules=[
        Extension(
            "videoroomd.media.dataplane._native",
            sources=[f"{CSRC}/{name}" for name in SOURCES],
            depends=[f"{CSRC}/{name}" for name in ("bytes.h", "crypto.h", "parse.h", "port.h", "port_io.h", "port_fast.h", "port_object.h", "port_tap.h", "srtp.h",
                                                              "srtp_internal.h", "plane.h", "plane_py.h", "remb.h",
                                                              "remb_py.h", "feedback.h", "feedback_py.h")],
            extra_compile_args=compile_args,
            extra_link_args=link_args,
            libraries=["dl"],
        )
    ],
)
