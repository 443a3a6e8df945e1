"""The public facade: what it lists, and that importing it stays cheap."""

import subprocess
import sys

import telnyx_audio


def test_every_name_in_all_resolves():
    for name in telnyx_audio.__all__:
        assert getattr(telnyx_audio, name) is not None, name


def test_an_unknown_name_is_an_attribute_error():
    try:
        telnyx_audio.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_package_loads_no_heavy_dependency():
    code = ("import sys, telnyx_audio; heavy = ('numpy', 'pandas', 'matplotlib', 'scipy', 'websockets', "
            "'soundfile', 'requests', 'nacl'); print(','.join(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_errors_are_one_tree_and_bad_values_are_value_errors():
    from telnyx_audio.errors import CaptureError, TelnyxAudioError, UnsupportedEncodingError
    assert issubclass(UnsupportedEncodingError, (TelnyxAudioError, ValueError))
    assert issubclass(CaptureError, (TelnyxAudioError, ValueError))
