"""What the repository promises about itself: bounded tests, and what is (not) committed."""
import subprocess

from conftest import ROOT


def test_every_test_has_a_timeout(pytestconfig):
    """A hang (say a fork deadlock in an n_process test) must fail one test, not eat CI."""
    assert pytestconfig.pluginmanager.hasplugin("timeout")
    assert 0 < float(pytestconfig.getini("timeout")) <= 600


def tracked(*paths):
    out = subprocess.run(["git", "ls-files", *paths], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_assets_holds_only_its_readme():
    """assets/ is in a fresh clone, says what goes there, and nothing downloaded is committed."""
    assert tracked("assets") == ["assets/README.md"]
    readme = (ROOT / "assets" / "README.md").read_text()
    assert "scripts/fetch_smollm2.py" in readme and "scripts/prepare_data.py" in readme
