"""cJSON 1.7.15 for Linux x86_64/armv8, repackaged from Debian bookworm's libcjson1 + libcjson-dev.

Consumers get the CMake target cjson::cjson (find_package(cjson)) and `#include <cjson/cJSON.h>`.
"""
import os

from conan import ConanFile
from conan.tools.files import copy


class CjsonConan(ConanFile):
    name = "cjson"
    version = "1.7.15"
    description = "Ultralightweight JSON parser in ANSI C (Debian bookworm binaries)"
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
        for entry in self._repack.artifacts(self):
            self._repack.unpack_deb(self, self._repack.fetched(self, entry),
                                    os.path.join(self.build_folder, "root"))

    def package(self):
        root = os.path.join(self.build_folder, "root")
        multiarch = self._repack.MULTIARCH[str(self.settings.arch)]
        libdir = os.path.join(root, "usr", "lib", multiarch)
        lib = os.path.join(self.package_folder, "lib")
        # The real file and its two links (libcjson.so -> .so.1 -> .so.1.7.15), links kept as links.
        copy(self, "libcjson.so*", libdir, lib)
        copy(self, "cJSON.h", os.path.join(root, "usr", "include", "cjson"),
             os.path.join(self.package_folder, "include", "cjson"))
        self._repack.copy_debian_copyright(self, root, "libcjson1")

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "cjson")
        self.cpp_info.set_property("cmake_target_name", "cjson::cjson")
        self.cpp_info.set_property("pkg_config_name", "libcjson")
        self.cpp_info.libs = ["cjson"]
