import gzip
import re

import pytest

from alog_edge.formats import logformat
from alog_edge.errors import AlogError


def test_format_string_becomes_the_same_regex_logparser_builds():
    regex, headers = logformat.format_to_regex("<Date> <Time>  <Level> \\[<Node>\\] - <Content>")
    assert headers == ["Date", "Time", "Level", "Node", "Content"]
    assert regex == r"^(?P<Date>.*?)\s+(?P<Time>.*?)\s+(?P<Level>.*?)\s+\[(?P<Node>.*?)\]\s+-\s+(?P<Content>.*?)$"
    m = re.match(regex, "2015-07-29 17:41:44,747  INFO [n1] - Notification time out: 3200")
    assert m["Node"] == "n1" and m["Content"] == "Notification time out: 3200"


def test_a_format_without_content_is_refused():
    with pytest.raises(AlogError, match="no <Content>"):
        logformat.format_to_regex("<Date> <Time>")


@pytest.mark.parametrize("name", ["hdfs", "bgl", "hadoop", "zookeeper", "openstack", "linux", "syslog",
                                  "iso8601", "dmesg", "demo"])
def test_every_preset_compiles_with_its_masks(name):
    fmt = logformat.PRESETS[name]
    re.compile(fmt.regex)
    for pattern, _ in fmt.masks:
        re.compile(pattern)


def test_each_loghub_preset_splits_every_line_of_its_sample(datasets):
    for system in ["HDFS", "BGL", "Hadoop", "Zookeeper", "OpenStack", "Linux"]:
        rx = re.compile(logformat.PRESETS[system.lower()].regex)
        lines = [t for _, t in logformat.read_lines(datasets / "loghub-2k" / system / f"{system}_2k.log")]
        assert len(lines) == 2000
        assert all(rx.match(t) for t in lines), system


def test_default_masks_cover_common_variable_fields():
    text = ("conn from 10.0.0.7:5222,10.0.0.8:5222 to db.example.com took 35 ms, read 4.5 MB of /var/lib/x.db "
            "id 9f1c2e3a4b5d6e7f req 0x1F uuid 123e4567-e89b-12d3-a456-426614174000 count 17 at "
            "https://x.org/a?b=1 by ops@example.com on 2024-03-05 10:00:01,123 and Fri Jul 22 19:29:09 2005 "
            "job_1445_0020_m_000008 tags [a, b, c] mac aa:bb:cc:00:11:22 uid=509 sid:42 via proxy.example.hk:5070 "
            "load C:\\Windows\\x.dll")
    for pattern, mask in logformat.DEFAULT_MASKS:
        text = re.sub(pattern, f"<{mask}>", text)
    assert text == ("conn from <IP> to db.example.com took <NUM> ms, read <NUM> MB of <PATH> "
                    "id <ID> req <ID> uuid <UUID> count <NUM> at <URL> by <EMAIL> on <DATE> and <DATE> "
                    "<ID> tags <LIST> mac <MAC> uid=<NUM> sid:<NUM> via <HOST> load <PATH>")


def test_custom_format_finds_host_and_level_fields():
    fmt = logformat.resolve(None, "<Time> <Hostname> <Severity>: <Content>")
    assert fmt.host_field == "Hostname" and fmt.level_field == "Severity"


def test_unknown_preset_names_the_choices():
    with pytest.raises(AlogError, match="presets: .*hdfs"):
        logformat.resolve("nope", None)


def test_lines_come_with_numbers_and_without_line_endings(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"one\r\ntwo\n\nthree")
    assert list(logformat.read_lines(path)) == [(1, "one"), (2, "two"), (3, ""), (4, "three")]


def test_gzip_logs_are_read_transparently(tmp_path):
    path = tmp_path / "a.log.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"alpha\nbeta\n")
    assert [t for _, t in logformat.read_lines(path)] == ["alpha", "beta"]
    assert logformat.count_lines(path) == 2


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"),
    (b"\n  \n", "is empty"),
    (b"ok\n\x00\x01\x02binary\n", "line 2 contains NUL bytes"),
    (b"ok\nbad \xff\xfe here\n", "line 2 is not valid UTF-8"),
])
def test_bad_input_names_the_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.log"
    path.write_bytes(content)
    with pytest.raises(AlogError, match=message) as info:
        list(logformat.read_lines(path))
    assert info.value.path == str(path)


def test_a_ten_megabyte_line_is_refused_without_reading_it_whole(tmp_path):
    path = tmp_path / "long.log"
    path.write_bytes(b"short\n" + b"x" * (10 << 20) + b"\n")
    with pytest.raises(AlogError, match="line 2 is longer than 1048576 bytes"):
        list(logformat.read_lines(path))


def test_a_line_of_exactly_the_limit_is_accepted(tmp_path):
    path = tmp_path / "edge.log"
    path.write_bytes(b"y" * 100 + b"\n")
    assert [len(t) for _, t in logformat.read_lines(path, max_line_bytes=100)] == [100]


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(AlogError, match="no such file"):
        list(logformat.read_lines(tmp_path / "nope.log"))
