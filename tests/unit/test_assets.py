"""The asset registry: lookup order, digest checks, the error messages, and fetching from a
local HTTP server (the only network access in the test suite: loopback, allowed explicitly)."""

import functools
import hashlib
import http.server
import socket
import threading

import pytest

import nonet
from evalsuite import assets
from evalsuite.assets import Asset, CorruptAssetError, open_clip_asset_name, resolve
from evalsuite.errors import MissingAssetError


@pytest.fixture
def empty_upstream(tmp_path, monkeypatch):
    """Point every upstream cache at empty folders, so only the assets folder counts."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.fixture
def loopback(monkeypatch):
    """Allow TCP connections to 127.0.0.1 only (tests/nonet.py blocks everything else)."""
    def create_connection(address, timeout=None, source_address=None, **_):
        host, port = address[:2]
        if host not in ("127.0.0.1", "localhost"):
            raise nonet.NetworkBlocked(f"only loopback is allowed, not {host}")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if timeout is not None:
            s.settimeout(timeout)
        nonet._real_connect(s, ("127.0.0.1", port))
        return s
    monkeypatch.setattr(socket, "create_connection", create_connection)


@pytest.fixture
def server(tmp_path, loopback):
    """A local HTTP server serving tmp_path/served; yields (base URL, folder)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", folder
    httpd.shutdown()
    httpd.server_close()


def test_missing_asset_is_one_clear_error(empty_upstream):
    with pytest.raises(MissingAssetError) as e:
        resolve("inception_pytorch_fid", empty_upstream / "assets")
    msg = str(e.value)
    for part in ("pt_inception-2015-12-05-6726825d.pth", "looked in", "6726825d",
                 str((empty_upstream / "assets").resolve()), str(empty_upstream / "torch"),
                 "evalsuite assets assets.fetch=true assets.names=[inception_pytorch_fid]",
                 "https://github.com/mseitzer/pytorch-fid/releases"):
        assert part in msg, part


def test_wrong_sha256_is_refused_unless_verify_is_off(empty_upstream):
    d = empty_upstream / "assets"
    d.mkdir()
    (d / "alexnet-owt-7be5be79.pth").write_bytes(b"truncated")
    digest = hashlib.sha256(b"truncated").hexdigest()
    with pytest.raises(CorruptAssetError) as e:
        resolve("lpips_alexnet", d)
    assert digest in str(e.value) and "7be5be79" in str(e.value)
    assert "metrics.verify_assets=false" in str(e.value)
    r = resolve("lpips_alexnet", d, verify=False)
    assert r.sha256 == digest and r.verified is False
    assert r.to_record()["verification"].startswith("stand-in")


def test_full_digest_and_unpublished_digest(empty_upstream):
    d = empty_upstream / "assets"
    d.mkdir()
    (d / "open_clip_vit_l14_336_openai.pt").write_bytes(b"x")
    (d / "inception-2015-12-05.pt").write_bytes(b"y")
    states = {s.name: s.state for s in assets.check(
        ["open_clip_vit_l14_336_openai", "inception_clean_fid", "inception_pytorch_fid"], d)}
    assert states == {"open_clip_vit_l14_336_openai": "corrupt",
                      "inception_clean_fid": "unverified", "inception_pytorch_fid": "missing"}
    r = resolve("inception_clean_fid", d)
    assert r.verified is False and "no published digest" in r.verification


def test_upstream_caches_are_searched_after_the_assets_folder(empty_upstream):
    hub = empty_upstream / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "pt_inception-2015-12-05-6726825d.pth").write_bytes(b"z")
    r = resolve("inception_pytorch_fid", empty_upstream / "assets", verify=False)
    assert r.path == hub / "pt_inception-2015-12-05-6726825d.pth"
    snap = (empty_upstream / "hf" / "models--laion--CLIP-ViT-g-14-laion2B-s34B-b88K" /
            "snapshots" / "abc123")
    snap.mkdir(parents=True)
    (snap / "open_clip_pytorch_model.bin").write_bytes(b"w")
    r = resolve("open_clip_vit_g14_laion2b_s34b_b88k", empty_upstream / "assets")
    assert r.path == snap / "open_clip_pytorch_model.bin"
    # a file in the assets folder wins
    (empty_upstream / "assets").mkdir()
    (empty_upstream / "assets" / "open_clip_vit_g14_laion2b_s34b_b88k.bin").write_bytes(b"v")
    r = resolve("open_clip_vit_g14_laion2b_s34b_b88k", empty_upstream / "assets")
    assert r.path.parent == empty_upstream / "assets"


def test_fetch_from_a_local_server_checks_the_digest(server, tmp_path, monkeypatch):
    base, served = server
    data = b"weights" * 1000
    (served / "w.bin").write_bytes(data)
    good = Asset("test_good", "w.bin", f"{base}/w.bin", sha256=hashlib.sha256(data).hexdigest())
    bad = Asset("test_bad", "w.bin", f"{base}/w.bin", sha256="0" * 64)
    monkeypatch.setitem(assets.ASSETS, "test_good", good)
    monkeypatch.setitem(assets.ASSETS, "test_bad", bad)
    with pytest.raises(CorruptAssetError, match="not saved"):
        assets.fetch("test_bad", tmp_path / "a")
    assert not list((tmp_path / "a").iterdir())  # no partial file left behind
    path = assets.fetch("test_good", tmp_path / "a")
    assert path.read_bytes() == data
    assert resolve("test_good", tmp_path / "a").verified is True


def test_assets_command_lists_and_fetches_through_a_mirror(server, empty_upstream, capsys):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from conftest import CONF_DIR
    from evalsuite.commands.assets import manage
    from evalsuite.config import register_configs

    base, served = server
    (served / "inception-2015-12-05.pt").write_bytes(b"torchscript stand-in")
    register_configs()
    GlobalHydra.instance().clear()
    d = empty_upstream / "assets"
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        listing = compose("assets", [f"assets.dir={d}", "metrics=fid_clean"])
        fetching = compose("assets", [f"assets.dir={d}", "metrics=fid_clean",
                                      "assets.fetch=true", f"assets.mirror={base}"])
    assert manage(listing) == 2
    assert "missing    inception_clean_fid" in capsys.readouterr().out
    assert manage(fetching) == 0
    out = capsys.readouterr().out
    assert "unverified inception_clean_fid" in out and str(d) in out
    assert (d / "inception-2015-12-05.pt").read_bytes() == b"torchscript stand-in"


def test_open_clip_asset_names():
    assert open_clip_asset_name("ViT-g-14", "laion2b_s34b_b88k") == \
        "open_clip_vit_g14_laion2b_s34b_b88k"
    assert open_clip_asset_name("ViT-L-14", "openai") == "open_clip_vit_l14_openai"
    assert open_clip_asset_name("ViT-L-14-336", "openai") == "open_clip_vit_l14_336_openai"
    assert open_clip_asset_name("RN50", "openai") == "open_clip_rn50_openai"


@pytest.mark.parametrize("model", ["ViT-L-14", "ViT-L-14-336"])
def test_openai_clip_entries_match_open_clip_and_are_found_in_its_cache(empty_upstream, model):
    """The URL (which names the sha256) is open_clip's for the tag, and a file open_clip
    downloaded to ~/.cache/clip under its upstream name is found."""
    import open_clip

    url = open_clip.get_pretrained_url(model, "openai")
    asset = assets.get(open_clip_asset_name(model, "openai"))
    assert asset.url == url and asset.sha256 == url.split("/")[-2]
    cached = empty_upstream / "home" / ".cache" / "clip" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"stand-in")
    r = resolve(asset.name, empty_upstream / "assets", verify=False)
    assert r.path == cached and r.verified is False
