"""libsodium 1.0.18 for Linux x86_64/armv8, repackaged from Debian bookworm's libsodium23 +
libsodium-dev (the shared library; `alog-edge verify` checks minisign signatures with it).

Consumers get the CMake target libsodium::libsodium (find_package(libsodium)) and
`#include <sodium.h>`.
"""
import os

from conan import ConanFile
from conan.tools.files import copy


class LibsodiumConan(ConanFile):
    name = "libsodium"
    version = "1.0.18"
    description = "Modern, portable cryptography library (Debian bookworm binaries)"
    license = "ISC"
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
        # libsodium.so -> libsodium.so.23 -> libsodium.so.23.3.0, links kept as links (not the .a).
        copy(self, "libsodium.so*", libdir, lib)
        include = os.path.join(root, "usr", "include")
        copy(self, "sodium.h", include, os.path.join(self.package_folder, "include"))
        copy(self, "*.h", os.path.join(include, "sodium"),
             os.path.join(self.package_folder, "include", "sodium"))
        self._repack.copy_debian_copyright(self, root, "libsodium23")

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "libsodium")
        self.cpp_info.set_property("cmake_target_name", "libsodium::libsodium")
        self.cpp_info.set_property("pkg_config_name", "libsodium")
        self.cpp_info.libs = ["sodium"]
