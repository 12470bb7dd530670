"""Conan recipe (consumer) of the alog-edge C runtime.

Dependencies are local recipes under toolchains/recipes/ that repackage pinned registry
artifacts (no remote is used). Build with the explicit profiles in toolchains/, e.g.

    CONAN_HOME=$PWD/.tools/conan conan build . -pr:b toolchains/build -pr:h toolchains/linux-armv8 \
        --build=missing

or, as the invoke tasks do, through alog_edge.native.build_runtime(). `-o "&:sanitize=True"` builds
with AddressSanitizer + UndefinedBehaviorSanitizer (x86_64 only).
"""
import os
import re
import sys

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, rmdir


class AlogEdgeRuntime(ConanFile):
    name = "alog-edge-runtime"
    description = "The alog-edge runtime: log anomaly detection on the onnxruntime C API"
    settings = "os", "arch", "compiler", "build_type"
    options = {"sanitize": [True, False]}
    default_options = {"sanitize": False}
    requires = ("onnxruntime/1.31.1", "cjson/1.7.15", "pcre2/10.42", "libsodium/1.0.18")

    def set_version(self):
        # One source for the version: the AE_VERSION_STRING of the public header.
        header = os.path.join(self.recipe_folder, "runtime", "include", "alog_edge.h")
        with open(header, encoding="utf-8") as f:
            self.version = re.search(r'^#define AE_VERSION_STRING "([^"]+)"$', f.read(),
                                     re.MULTILINE).group(1)

    def validate(self):
        if self.options.sanitize and self.settings.arch != "x86_64":
            raise ConanInvalidConfiguration("the sanitizer build (ASan+UBSan) is for x86_64 only")

    def layout(self):
        # build/cmake/<build_folder_vars>/<build_type>: the profiles set build_folder_vars to
        # ["settings.arch"], so each target has its own tree and CMake presets.
        cmake_layout(self, build_folder=os.path.join("build", "cmake"))

    def generate(self):
        runtime_libdir = os.path.join(self.generators_folder, "runtime-lib")
        licenses = os.path.join(self.generators_folder, "runtime-licenses")
        tc = CMakeToolchain(self)
        tc.cache_variables["ALOG_EDGE_SANITIZE"] = bool(self.options.sanitize)
        tc.cache_variables["ALOG_EDGE_RUNTIME_LIBDIR"] = runtime_libdir.replace("\\", "/")
        tc.cache_variables["ALOG_EDGE_RUNTIME_LICENSES"] = licenses.replace("\\", "/")
        # The C tests write their ONNX fixtures with onnx, installed beside Conan in the venv.
        tc.cache_variables["Python3_EXECUTABLE"] = sys.executable.replace("\\", "/")
        tc.generate()
        CMakeDeps(self).generate()
        # What `cmake --install` adds beside bin/alog-edge: the shared libraries (files and their
        # SONAME links) into lib/, and their licenses into share/licenses/<package>/.
        rmdir(self, runtime_libdir)
        rmdir(self, licenses)
        for dep in self.dependencies.host.values():
            for libdir in dep.cpp_info.libdirs:
                copy(self, "*.so.*", libdir, runtime_libdir)
            copy(self, "*", os.path.join(dep.package_folder, "licenses"),
                 os.path.join(licenses, dep.ref.name))

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()
