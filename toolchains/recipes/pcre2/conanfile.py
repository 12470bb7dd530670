"""PCRE2 10.42 (8-bit, UTF/UCP, JIT) for Linux x86_64/armv8, repackaged from Debian bookworm's
libpcre2-8-0 + libpcre2-dev.

Only the 8-bit library is packaged. Consumers get the CMake target pcre2::pcre2-8
(find_package(pcre2)), with PCRE2_CODE_UNIT_WIDTH=8 defined, and `#include <pcre2.h>`.
"""
import os

from conan import ConanFile
from conan.tools.files import copy


class Pcre2Conan(ConanFile):
    name = "pcre2"
    version = "10.42"
    description = "Perl-compatible regular expressions, 8-bit library (Debian bookworm binaries)"
    license = "BSD-3-Clause"
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
        # libpcre2-8.so -> libpcre2-8.so.0 -> libpcre2-8.so.0.11.2, links kept as links.
        copy(self, "libpcre2-8.so*", libdir, lib)
        copy(self, "pcre2.h", os.path.join(root, "usr", "include"),
             os.path.join(self.package_folder, "include"))
        self._repack.copy_debian_copyright(self, root, "libpcre2-8-0")

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "pcre2")
        self.cpp_info.set_property("cmake_target_name", "pcre2::pcre2-8")
        self.cpp_info.set_property("pkg_config_name", "libpcre2-8")
        self.cpp_info.libs = ["pcre2-8"]
        self.cpp_info.defines = ["PCRE2_CODE_UNIT_WIDTH=8"]
