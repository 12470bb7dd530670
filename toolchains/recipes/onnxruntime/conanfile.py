"""onnxruntime 1.31.1 for Linux x86_64/armv8, repackaged from pinned registry artifacts.

The shared library comes from the PyPI wheels (onnxruntime/capi/libonnxruntime.so.1.31.1), the C
headers from Debian trixie's libonnxruntime-dev 1.21.0. Consumers get the CMake target
onnxruntime::onnxruntime (find_package(onnxruntime)) and `#include <onnxruntime_c_api.h>`.
"""
import os

from conan import ConanFile
from conan.tools.files import copy

SONAME = "libonnxruntime.so.1"


class OnnxruntimeConan(ConanFile):
    name = "onnxruntime"
    version = "1.31.1"
    description = "ONNX Runtime inference library (prebuilt, C API)"
    license = "MIT"
    package_type = "shared-library"
    settings = "os", "arch"
    python_requires = "alog-repack/1.0"

    @property
    def _repack(self):
        return self.python_requires["alog-repack"].module

    def validate(self):
        self._repack.validate_linux(self)

    def build(self):
        library = f"libonnxruntime.so.{self.version}"
        for entry in self._repack.artifacts(self):
            path = self._repack.fetched(self, entry)
            if "pip" in entry:
                self._repack.unpack_wheel_members(
                    self, path,
                    [f"onnxruntime/capi/{library}", "onnxruntime/LICENSE",
                     "onnxruntime/ThirdPartyNotices.txt"],
                    os.path.join(self.build_folder, "wheel"))
            else:
                self._repack.unpack_deb(self, path, os.path.join(self.build_folder, "deb"))

    def package(self):
        library = f"libonnxruntime.so.{self.version}"
        wheel = os.path.join(self.build_folder, "wheel")
        lib = os.path.join(self.package_folder, "lib")
        copy(self, library, wheel, lib)
        self._repack.link(SONAME, library, lib)
        self._repack.link("libonnxruntime.so", SONAME, lib)
        copy(self, "*.h", os.path.join(self.build_folder, "deb", "usr", "include", "onnxruntime"),
             os.path.join(self.package_folder, "include", "onnxruntime"))
        licenses = os.path.join(self.package_folder, "licenses")
        copy(self, "LICENSE", wheel, licenses)
        copy(self, "ThirdPartyNotices.txt", wheel, licenses)
        self._repack.copy_debian_copyright(self, os.path.join(self.build_folder, "deb"),
                                           "libonnxruntime-dev")

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "onnxruntime")
        self.cpp_info.set_property("cmake_target_name", "onnxruntime::onnxruntime")
        self.cpp_info.set_property("pkg_config_name", "libonnxruntime")
        self.cpp_info.includedirs = ["include/onnxruntime"]
        self.cpp_info.libs = ["onnxruntime"]
