"""A pynetdicom Verification SCP that checks User Identity negotiation
(PS3.7 D.3.3.7): a username and passcode must match the account given in
the environment (USER_IDENTITY_ACCOUNT="user:passcode", never argv), else
the association is rejected. Listens on 127.0.0.1:PORT. For
tests/test_probe.py."""
import hmac
import os
import sys

from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification

USER, _, PASSCODE = os.environ["USER_IDENTITY_ACCOUNT"].encode().partition(b":")


def check(event):
    ok = (event.user_id_type == 2 and hmac.compare_digest(event.primary_field, USER)
          and hmac.compare_digest(event.secondary_field, PASSCODE))
    return ok, (b"" if ok else None)


ae = AE(ae_title="UIDSCP")
ae.add_supported_context(Verification)
ae.start_server(("127.0.0.1", int(sys.argv[1])), block=True, evt_handlers=[(evt.EVT_USER_ID, check)])
