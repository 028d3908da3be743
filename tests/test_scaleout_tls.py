"""The archive's index on a PostgreSQL that takes TLS connections only, as
a database on another host would: `obscura` reaches it over TLS, checking
the server's certificate against `database_ca_file`, and stores and reads
back through `obscura serve`; with a CA that did not sign the server's
certificate it refuses, says why, and never falls back to a plain
connection."""
import secrets
import shutil

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from conftest import make_key, obscura, pydicom_test_files
from gateway_fixtures import Gateway, free_port, write_tokens
from scaleout_fixtures import postgres_server
from test_serve import make_pki

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="openssl not installed (apt-get install openssl)")


def write_config(root, pg, ca, port, token):
    write_tokens(root / "web-tokens", {"pacs": token})
    config = root / "serve.toml"
    config.write_text(f"""
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:{free_port()}"
data_dir = "gw"

[archive]
data_dir = "archive"
master_key_file = "master.key"
database_url = "{pg.url}"
database_ca_file = "{ca}"

[web]
listen = "127.0.0.1:{port}"
plain = true
tokens_file = "web-tokens"

[[web.principal]]
name = "pacs"
tenant = "Clinic"
""")
    return config


def test_the_index_over_tls_verified_against_the_ca(tmp_path):
    pki = tmp_path / "pki"
    make_pki(pki)
    stranger = tmp_path / "stranger"
    make_pki(stranger)  # another CA, which did not sign the server's certificate
    with postgres_server(tls=pki) as pg:
        make_key(tmp_path / "master.key")
        token, port = secrets.token_urlsafe(24), free_port()

        # a CA that did not sign the server's certificate: refused, said why
        wrong = write_config(tmp_path, pg, stranger / "ca.pem", port, token)
        refused = obscura("tenant", "create", "Clinic", "--config", wrong)
        assert refused.returncode != 0
        assert "certificate" in refused.stderr.lower() or "tls" in refused.stderr.lower(), refused.stderr
        assert "obscura_vault" not in pg.psql(pg.database, "SELECT nspname FROM pg_namespace")

        config = write_config(tmp_path, pg, pki / "ca.pem", port, token)
        made = obscura("tenant", "create", "Clinic", "--config", config)
        assert made.returncode == 0, made.stderr
        server = Gateway(config, port).start()
        try:
            s = requests.Session()
            s.trust_env = False
            s.headers["Authorization"] = f"Bearer {token}"
            client = DICOMwebClient(f"http://127.0.0.1:{port}", session=s)
            path = pydicom_test_files() / "CT_small.dcm"
            ds = pydicom.dcmread(path)
            client.store_instances([ds])
            back = client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
            assert back.SOPInstanceUID == ds.SOPInstanceUID
            assert back.PixelData == ds.PixelData
            found = client.search_for_studies(search_filters={"PatientID": ds.PatientID})
            assert [f["0020000D"]["Value"][0] for f in found] == [ds.StudyInstanceUID]
        finally:
            server.stop()
        assert pg.psql(pg.database, "SELECT count(*) FROM obscura_vault.instances").strip() == "1"
        # every connection obscura made was TLS (the server takes no other on TCP)
        log = pg.log()
        authorized = [line for line in log.splitlines()
                      if "connection authorized" in line and "application_name=obscura" in line]
        assert authorized, log[-2000:]
        assert all("SSL enabled" in line for line in authorized), authorized
