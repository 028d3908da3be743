"""A pynetdicom Study Root C-MOVE SCP that sends to ANY Move Destination:
whatever AE title is asked for, it moves one real pydicom test file to a
Storage SCP of its own on 127.0.0.1 (which keeps nothing). The weak
configuration `obscura probe --intrusive` must flag. Usage: PORT."""
import sys

from pydicom import dcmread
from pydicom.data import get_testdata_file
from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove, Verification

port = int(sys.argv[1])
sink = AE(ae_title="SINK")
sink.supported_contexts = AllStoragePresentationContexts
sink_server = sink.start_server(("127.0.0.1", 0), block=False,
                                evt_handlers=[(evt.EVT_C_STORE, lambda event: 0x0000)])
sink_port = sink_server.server_address[1]
dataset = dcmread(get_testdata_file("CT_small.dcm"))


def on_move(event):
    yield "127.0.0.1", sink_port  # any destination title: the sink
    yield 1
    yield 0xFF00, dataset


ae = AE(ae_title="MOVEANY")
ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
ae.add_supported_context(Verification)
ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
ae.start_server(("127.0.0.1", port), block=True, evt_handlers=[(evt.EVT_C_MOVE, on_move)])
