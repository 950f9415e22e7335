"""The command lines CCP runs on nodes, as data (instances/commands/): builders and parsers, no node."""

import io
import tarfile
from types import SimpleNamespace

import pytest

from instances.commands import backup, compose, docker, files, http_probe, tar
from instances.drivers import DriverError

INSTANCE = SimpleNamespace(slug="acme", compose_project="ccp-acme", install_dir="/srv/acme")


def test_compose_runs_as_the_instance_project_or_its_slug():
    assert compose.compose_argv(INSTANCE, "up", "-d") == ["docker", "compose", "--project-name", "ccp-acme", "up", "-d"]
    unnamed = SimpleNamespace(slug="acme", compose_project="")
    assert compose.compose_argv(unnamed, "images")[:4] == ["docker", "compose", "--project-name", "acme"]
    assert compose.ps_argv(INSTANCE)[-3:] == ["ps", "--format", "json"]
    assert compose.ps_argv(INSTANCE, include_stopped=True)[-4:] == ["ps", "--all", "--format", "json"]
    assert compose.config_argv(INSTANCE)[-3:] == ["config", "--format", "json"]
    assert compose.version_argv() == ["docker", "compose", "version", "--short"]


def test_compose_ps_is_read_as_json_lines_or_an_array_or_nothing():
    lines = b'{"Service": "web", "State": "running"}\n{"Service": "db", "State": "exited"}\n'
    array = b'[{"Service": "web", "State": "running"}]'
    assert [c["Service"] for c in compose.parse_ps(lines)] == ["web", "db"]
    assert compose.parse_ps(array) == [{"Service": "web", "State": "running"}]
    assert compose.parse_ps(b"\n") == []
    assert compose.parse_config(b'{"name": "ccp-acme", "services": {}}')["name"] == "ccp-acme"


def test_docker_builders():
    assert docker.server_version_argv() == ["docker", "version", "--format", "{{.Server.Version}}"]
    assert docker.image_tag_argv("sha256:abc", "app:v2") == ["docker", "image", "tag", "sha256:abc", "app:v2"]
    assert docker.pull_argv("reg/app:v2") == ["docker", "pull", "--quiet", "reg/app:v2"]
    assert docker.save_argv("reg/app:v2") == ["docker", "save", "reg/app:v2"]
    assert docker.load_argv() == ["docker", "load", "--quiet"]
    assert docker.image_list_argv() == ["docker", "image", "ls", "--no-trunc", "--digests"]
    # Values are positional parameters of a fixed script, never pasted into it.
    argv = docker.image_ids_argv(["a:1", "$(reboot)"])
    assert argv[:2] == ["sh", "-c"] and argv[3:] == ["ccp-image-ids", "a:1", "$(reboot)"] and "reboot" not in argv[2]
    assert docker.project_containers_argv("ccp-acme")[3:] == ["ccp-containers", "ccp-acme"]


def test_image_ids_are_matched_to_their_images_line_by_line():
    assert docker.parse_image_ids(b"sha256:aaa\n\n", ["a:1", "b:2"]) == {"a:1": "sha256:aaa", "b:2": None}
    assert docker.parse_image_ids(b"", ["a:1"]) == {"a:1": None}


def test_project_containers_are_parsed_with_and_without_health():
    out = b"c1 sha256:i1 web running 0 healthy\nc2 sha256:i2 migrate exited 0\nc3 sha256:i3 db exited -1 \nshort line\n"
    found = docker.parse_project_containers(out)
    assert found[0] == docker.ProjectContainer("c1", "sha256:i1", "web", "running", 0, "healthy")
    assert (found[1].service, found[1].exit_code, found[1].health) == ("migrate", 0, "")
    assert found[2].exit_code == -1 and len(found) == 3


def test_file_commands_put_every_path_after_the_end_of_options():
    assert files.mkdir_argv("/a", "/b") == ["mkdir", "-p", "--", "/a", "/b"]
    assert files.mkdir_argv("/s", parents=False, mode="0700") == ["mkdir", "-m", "0700", "--", "/s"]
    assert files.remove_argv("-rf") == ["rm", "-f", "--", "-rf"]
    assert files.remove_argv("/s", recursive=True) == ["rm", "-rf", "--", "/s"]
    assert files.rmdir_if_empty_argv("/s") == ["rmdir", "--ignore-fail-on-non-empty", "--", "/s"]
    assert files.df_argv("/srv") == ["df", "-P", "-k", "/srv"]
    assert files.git_argv("/srv/acme", "stash", "list") == [
        "git", "-c", "safe.directory=/srv/acme", "-C", "/srv/acme", "stash", "list",
    ]  # fmt: skip
    assert files.run_in_directory_argv("/srv/acme", "/srv/acme/up.sh", "v2")[3:] == [
        "ccp-upgrade", "/srv/acme", "/srv/acme/up.sh", "v2",
    ]  # fmt: skip


def test_df_free_bytes_is_the_available_column_of_the_last_line():
    out = b"Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 1000 400 600 40% /\n"
    assert files.parse_df_free_bytes(out) == 600 * 1024


def _tar(entries: dict[str, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_tar_reads_many_files_and_says_which_are_missing():
    argv = tar.read_files_argv("/srv/acme", [".env", "-x"])
    assert argv[:3] == ["tar", "-C", "/srv/acme"] and argv[-3:] == ["--", ".env", "-x"]
    stderr = b"tar: conf/app.yml: Cannot stat: No such file or directory\n"
    found = tar.parse_files(_tar({".env": b"A=1\n"}), stderr, [".env", "conf/app.yml"], node="n1", base="/srv/acme")
    assert found == {".env": b"A=1\n", "conf/app.yml": None}


def test_tar_read_problems_other_than_missing_files_are_errors():
    with pytest.raises(DriverError, match="Permission denied"):
        tar.parse_files(b"", b"tar: .env: Cannot open: Permission denied\n", [".env"], node="n1", base="/srv/a")
    with pytest.raises(DriverError, match="it is not a file"):
        tar.parse_files(_tar({"conf": None}), b"", ["conf"], node="n1", base="/srv/a")
    assert tar.base_missing(b"tar: /srv/a: Cannot open: No such file or directory\n", "/srv/a")
    assert not tar.base_missing(b"tar: /srv/a: Cannot open: Permission denied\n", "/srv/a")


def test_backup_archive_and_restore_commands():
    assert tar.create_gz_argv("/srv/acme", (".env", "mkdocs"))[3:] == ["ccp-tar", "/srv/acme", ".env", "mkdocs"]
    assert tar.extract_gz_argv("/s/new") == ["tar", "-C", "/s/new", "--numeric-owner", "-p", "-xzf", "-"]
    assert backup.swap_argv("/srv/acme", "/srv/acme/.st", ["a"])[2] == backup.SWAP
    assert backup.undo_swap_argv("/srv/acme", "/srv/acme/.st", ["a"])[3:] == [
        "ccp-restore-undo",
        "/srv/acme",
        "/srv/acme/.st",
        "a",
    ]
    assert backup.inventory_argv("/srv/acme")[3:] == ["ccp-inventory", "/srv/acme"]
    assert backup.parse_inventory(b"f .env\0d mkdocs\0l a b\0") == {".env": "f", "mkdocs": "d", "a b": "l"}


def test_health_probe_builder_and_parser():
    assert http_probe.probe_argv(["http://127.0.0.1:1/"])[3:] == ["ccp-health", "http://127.0.0.1:1/"]
    out = b"\x1e1 0\n\n\x1e2 7\ncurl: (7) Failed to connect\n"
    assert http_probe.parse_probe(out, ["http://a/", "http://b/"]) == {
        "http://a/": (True, ""),
        "http://b/": (False, "curl: (7) Failed to connect"),
    }
    assert not http_probe.is_probeable("file:///etc/passwd")
