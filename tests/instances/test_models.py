"""Model validation: bad values are refused with a sentence that names the problem."""

import pytest
from django.core.exceptions import ValidationError

from instances.models import Instance, Node

pytestmark = pytest.mark.django_db


def errors_of(obj) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as excinfo:
        obj.full_clean()
    return excinfo.value.message_dict


@pytest.mark.parametrize("slug", ["Tenant", "-tenant", "tenant-", "ten ant", "t" * 64, "a_b", ""])
def test_bad_slug_is_refused(make_node, slug):
    errors = errors_of(Instance(name="x", slug=slug, node=make_node(), install_dir="/srv/x"))
    assert "slug" in errors


@pytest.mark.parametrize("slug", ["a", "tenant-1", "0abc", "a" * 63])
def test_good_slug_is_accepted(make_instance, slug):
    assert make_instance(slug=slug).slug == slug


@pytest.mark.parametrize(
    "path, fragment",
    [
        ("/srv/../etc", "must not contain '..'"),
        ("srv/tenant", "absolute path"),
        ("/", "root directory"),
        ("/srv//tenant", "not normalised"),
        ("/srv/tenant/", "not normalised"),
    ],
)
def test_bad_install_dir_is_refused(make_node, path, fragment):
    errors = errors_of(Instance(name="x", slug="x", node=make_node(), install_dir=path))
    assert fragment in " ".join(errors["install_dir"])


@pytest.mark.parametrize("tag", [".v1", "-v1", "v1:latest", "v 1", "a" * 129, "v1/x"])
def test_bad_image_tag_is_refused(make_node, tag):
    errors = errors_of(Instance(name="x", slug="x", node=make_node(), install_dir="/srv/x", image_tag=tag))
    assert "is not a valid image tag" in errors["image_tag"][0]


def test_bad_compose_project_is_refused(make_node):
    errors = errors_of(Instance(name="x", slug="x", node=make_node(), install_dir="/srv/x", compose_project="Bad"))
    assert "compose project" in errors["compose_project"][0]


def test_compose_project_defaults_to_slug(make_instance):
    assert make_instance(slug="acme").compose_project == "acme"


def test_duplicate_port_on_one_node_is_refused(make_node, make_instance):
    node = make_node()
    make_instance(node=node, slug="first", ports={"http": 8080})
    errors = errors_of(
        Instance(name="x", slug="second", node=node, install_dir="/srv/second", ports={"http": 8081, "https": 8080})
    )
    assert "8080 (used by first)" in errors["ports"][0]


def test_same_port_on_another_node_is_fine(make_node, make_instance):
    make_instance(node=make_node(), ports={"http": 8080})
    assert make_instance(node=make_node(), ports={"http": 8080}).pk


@pytest.mark.parametrize(
    "ports, fragment",
    [
        ({"http": 0}, "from 1 to 65535"),
        ({"http": 70000}, "from 1 to 65535"),
        ({"http": "80"}, "from 1 to 65535"),
        ({"HTTP": 80}, "lower-case"),
        ({"a": 80, "b": 80}, "used twice"),
    ],
)
def test_bad_ports_are_refused(make_node, ports, fragment):
    errors = errors_of(Instance(name="x", slug="x", node=make_node(), install_dir="/srv/x", ports=ports))
    assert fragment in errors["ports"][0]


def test_same_install_dir_on_one_node_is_refused(make_node, make_instance):
    node = make_node()
    make_instance(node=node, install_dir="/srv/shared")
    errors = errors_of(Instance(name="x", slug="other", node=node, install_dir="/srv/shared", ports={}))
    assert "already lives in this directory" in str(errors)


@pytest.mark.parametrize("address", ["bad host", "-x.example", "a..b", "x" * 64 + ".com", ""])
def test_bad_node_address_is_refused(address):
    errors = errors_of(Node(name="n", address=address))
    assert "address" in errors


@pytest.mark.parametrize("address", ["127.0.0.2", "::1", "node-1.example.com", "localhost"])
def test_good_node_address_is_accepted(address):
    Node(name="n", address=address).full_clean()


@pytest.mark.parametrize("path", ["../x", "/abs", "a/../../b"])
def test_protected_paths_must_stay_inside(make_node, path):
    errors = errors_of(Instance(name="x", slug="x", node=make_node(), install_dir="/srv/x", protected_paths=[path]))
    assert "relative path inside the install directory" in errors["protected_paths"][0]
