"""Riffusion's wire format both ways (riffpad.engine.wire): pure functions, no server."""

import base64
import io

import numpy as np
import pytest
import soundfile
from PIL import Image

from riffpad.audio.params import ExifTags, tag_image
from riffpad.engine import wire
from riffpad.engine.engine import RenderRequest, RequestError, Take
from riffpad.engine.pipeline import Blend, Leaf

RIFFUSION_BODY = {  # riffusion-app-hobby sends this shape
    "alpha": 0,  # an int: Riffusion's own parser refuses it (dacite issue 62), riffpad not
    "num_inference_steps": 3,
    "seed_image_id": "og_beat",
    "mask_image_id": None,
    "start": {"prompt": "jazz piano", "seed": 10, "denoising": 1, "guidance": 7},
    "end": {"prompt": "dub bass", "seed": 11, "denoising": 0.75, "guidance": 7.0},
}


def test_riffusion_request_with_ints_for_floats():
    r = wire.parse_inference_input(RIFFUSION_BODY)
    assert (r.prompt_a, r.seed_a, r.prompt_b, r.seed_b) == ("jazz piano", 10, "dub bass", 11)
    assert r.alpha == 0.0 and isinstance(r.alpha, float)
    assert r.denoising == 1.0 and r.steps == 3 and r.seed_image == "og_beat"


@pytest.mark.parametrize(
    "patch, field",
    [
        ({"alpha": "half"}, "alpha"),
        ({"num_inference_steps": 2.5}, "num_inference_steps"),
        ({"start": {"seed": 1}}, "start.prompt"),
        ({"end": {"prompt": "x", "seed": "1"}}, "end.seed"),
        ({"seed_image_id": "../etc/passwd"}, "seed_image_id"),
        ({wire.EXTRA: {"prompt_a": "x", "steps": 0}}, "steps"),
        ({wire.EXTRA: {"prompt_a": "x", "bogus": 1}}, "bogus"),
    ],
)
def test_bad_requests_name_the_field(patch, field):
    with pytest.raises(RequestError, match=field.replace(".", r"\.")):
        wire.parse_inference_input({**RIFFUSION_BODY, **patch})


PROMOTED = Blend(Leaf("jazz piano", 5), Leaf("dub bass", 6), 0.25)


@pytest.mark.parametrize(
    "request_",
    [
        RenderRequest("jazz piano", "dub bass", alpha=0.3, seed_a=7, steps=20),
        RenderRequest(PROMOTED, "church bells", alpha=0.5, seed_a=9, scheduler="dpm++"),
        RenderRequest("techno", seed_image=None, width=256, height=128, guidance_b=3.0),
        RenderRequest("techno", seed_image="builtin:beat", denoising=0.6, denoising_b=0.4),
    ],
)
def test_client_body_parses_back_to_the_same_request(request_):
    body = wire.request_to_inference_input(request_)
    # The same render and the same lineage (to_dict fills in seed_b and prompt_b).
    assert wire.parse_inference_input(body).to_dict() == request_.to_dict()
    # Riffusion's fields say the same, so a Riffusion server renders the same blend ends.
    assert body["alpha"] == request_.alpha and body["num_inference_steps"] == request_.steps
    assert (body["end"]["prompt"], body["end"]["seed"]) == (request_.b.prompt, request_.b.seed)


def test_riffusion_fields_that_contradict_the_riffpad_request_are_refused():
    body = wire.request_to_inference_input(RenderRequest("jazz piano", alpha=0.5))
    body["alpha"] = 0.75
    with pytest.raises(RequestError, match=r"alpha is 0\.75 but riffpad_request says 0\.5"):
        wire.parse_inference_input(body)


@pytest.mark.parametrize("seed", ["/etc/passwd", "~/song.wav", "a/b"])
def test_a_server_never_reads_a_path(seed):
    with pytest.raises(RequestError, match="not a path"):
        wire.check_servable(RenderRequest("x", seed_image=seed))
    with pytest.raises(RequestError, match="mask_image"):
        wire.check_servable(RenderRequest("x", mask_image=seed))


def fake_take(n=22050):
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 255, (64, 128, 3), dtype=np.uint8))
    tag_image(image)
    audio = (0.3 * rng.standard_normal(n)).astype(np.float32)
    request = RenderRequest("jazz piano")
    params = {"steps": np.int64(50), "size": (64, 128), "model": "m"}
    return Take(image, audio, 44100, params, {"total_s": 0.5}, request.to_dict(), request)


def test_answer_is_lossless_png_with_exif_and_float_wav():
    take = fake_take()
    out = wire.encode_output(take)
    assert out["image"].startswith("data:image/png;base64,")
    assert out["audio"].startswith("data:audio/wav;base64,")
    assert out["duration_s"] == pytest.approx(0.5)
    got = wire.decode_output(out)
    assert np.array_equal(np.asarray(got.image), np.asarray(take.image))
    assert np.array_equal(got.audio, take.audio) and got.sample_rate == 44100
    assert got.image.getexif()[ExifTags.SAMPLE_RATE] == 44100  # Riffusion's tags travel
    assert got.params == {"steps": 50, "size": [64, 128], "model": "m"}
    assert got.lineage == take.lineage and got.formats == ("image/png", "audio/wav")


def test_riffusion_answer_jpeg_and_mp3_decode_by_mime():
    take = fake_take(44100)
    img, mp3 = io.BytesIO(), io.BytesIO()
    take.image.save(img, format="JPEG")
    soundfile.write(mp3, take.audio, 44100, format="MP3", subtype="MPEG_LAYER_III")
    answer = {
        "image": wire.data_url("image/jpeg", img.getvalue()),
        "audio": wire.data_url("audio/mpeg", mp3.getvalue()),
        "duration_s": 1.0,
    }
    got = wire.decode_output(answer)
    assert got.image.size == (128, 64) and got.lineage is None
    assert got.sample_rate == 44100 and abs(len(got.audio) - 44100) < 3000  # MP3 pads frames
    assert got.formats == ("image/jpeg", "audio/mpeg")


@pytest.mark.parametrize(
    "answer, message",
    [
        ([1, 2], "JSON object"),
        ({"image": "x"}, "lacks audio"),
        ({"image": "http://x/y.png", "audio": "data:audio/wav;base64,"}, "not a data URL"),
        ({"image": "data:image/png;base64,@@@", "audio": "data:audio/wav;base64,"}, "base64"),
        ({"image": "data:text/html;base64,", "audio": "data:audio/wav;base64,"}, "text/html"),
        ({"image": "data:image/png;base64,AAAA", "audio": "data:audio/wav;base64,"}, "image/png"),
    ],
)
def test_garbage_answers_are_wire_errors(answer, message):
    with pytest.raises(wire.WireError, match=message):
        wire.decode_output(answer)


def test_undecodable_audio_says_so():
    take = fake_take()
    out = wire.encode_output(take)
    out["audio"] = "data:audio/mpeg;base64," + base64.b64encode(b"not mp3 at all" * 10).decode()
    with pytest.raises(wire.WireError, match="audio: cannot decode audio/mpeg"):
        wire.decode_output(out)
