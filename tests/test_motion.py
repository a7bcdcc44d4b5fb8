"""Motion brushes: top-left paths in, the API's bottom-left trajectories out, over real HTTP."""

from __future__ import annotations

import base64
import io
import math

import pytest
from kling_i2v import Image, ImageError, KlingClient, RequestValidationError
from kling_i2v.motion import MotionBrush, resample, to_api_points
from kling_i2v.testing import FakeGateway, sample_image_path
from kling_i2v.validation import schema

PIL = pytest.importorskip("PIL.Image")
ImageDraw = pytest.importorskip("PIL.ImageDraw")

SIZE = (640, 360)
TOKEN = "sk-motion-test"


def decode(image: Image) -> PIL.Image:
    return PIL.open(io.BytesIO(base64.b64decode(image.to_api())))


def test_corners_map_to_the_bottom_left_origin() -> None:
    # top-left (0, 0) is the API's (0, 359); bottom-right (639, 359) is (639, 0)
    assert to_api_points([(0, 0), (639, 359)], SIZE) == ((0, 359), (639, 0))
    assert to_api_points([(10.4, 20.6), (100, 300)], SIZE) == ((10, 338), (100, 59))


def test_the_limits_are_2_and_77_as_the_spec_says() -> None:
    spec = schema("DynamicMask")["properties"]["trajectories"]
    assert (spec["minItems"], spec["maxItems"]) == (2, 77)


def test_a_path_of_one_point_is_refused_naming_it() -> None:
    with pytest.raises(RequestValidationError, match=r"dynamic_masks: path: needs at least 2 points"):
        to_api_points([(5, 5)], SIZE)


@pytest.mark.parametrize(("point", "index"), [((640, 10), 1), ((-1, 10), 1), ((10, 360), 1),
                                               ((float("nan"), 3), 1)])
def test_a_point_off_the_image_is_refused_naming_it(point: tuple[float, float], index: int) -> None:
    with pytest.raises(RequestValidationError, match=rf"path\[{index}\]") as caught:
        to_api_points([(0, 0), point], SIZE)
    assert "640×360" in str(caught.value) or "finite" in str(caught.value)


def test_77_points_are_kept_as_drawn_and_78_are_resampled() -> None:
    line = [(float(i), 100.0) for i in range(77)]
    assert to_api_points(line, SIZE) == tuple((i, 259) for i in range(77))
    longer = [(float(i), 100.0) for i in range(78)]
    out = to_api_points(longer, SIZE)
    assert len(out) == 77 and out[0] == (0, 259) and out[-1] == (77, 259)


def test_a_long_curve_is_resampled_evenly_keeping_its_ends() -> None:
    # a half circle of 1000 points, centre (320, 300), radius 200
    curve = [(320 + 200 * math.cos(math.pi * i / 999), 300 - 200 * math.sin(math.pi * i / 999))
             for i in range(1000)]
    out = resample(curve, 77)
    assert len(out) == 77 and out[0] == curve[0] and out[-1] == curve[-1]
    steps = [math.dist(a, b) for a, b in zip(out, out[1:], strict=False)]
    assert max(steps) - min(steps) < 0.01  # evenly spaced along the length
    assert all(abs(math.dist(p, (320, 300)) - 200) < 0.01 for p in out)  # on the curve
    api = to_api_points(curve, SIZE)
    assert len(api) == 77 and api[0] == (520, 59) and api[-1] == (120, 59)


def test_a_box_brush_paints_exactly_the_box() -> None:
    brush = MotionBrush.from_box((40, 60, 200, 220), [(120, 140), (400, 150)], image=SIZE)
    mask = decode(brush.mask)
    assert (mask.format, mask.mode, mask.size) == ("PNG", "L", SIZE)
    assert mask.getbbox() == (40, 60, 200, 220)
    assert set(mask.tobytes()) == {0, 255}
    assert brush.to_dict()["trajectories"] == [{"x": 120, "y": 219}, {"x": 400, "y": 209}]


def test_a_polygon_brush_matches_pillows_drawing() -> None:
    triangle = [(100.0, 50.0), (500.0, 120.0), (250.0, 330.0)]
    brush = MotionBrush.from_polygon(triangle, [(250, 160), (300, 100)], image=SIZE)
    ours = decode(brush.mask).tobytes()
    reference = PIL.new("L", SIZE, 0)
    ImageDraw.Draw(reference).polygon(triangle, fill=255)
    theirs = reference.tobytes()
    differ = sum(a != b for a, b in zip(ours, theirs, strict=True))
    assert sum(theirs) // 255 > 40_000
    assert differ / (SIZE[0] * SIZE[1]) < 0.005  # only edge pixels may round differently


def test_a_mask_image_must_have_the_images_aspect_ratio() -> None:
    def png(size: tuple[int, int]) -> bytes:
        buf = io.BytesIO()
        PIL.new("L", size, 255).save(buf, "PNG")
        return buf.getvalue()

    image = Image.from_path(sample_image_path())  # 640×360
    brush = MotionBrush.from_mask(png((1280, 720)), [(1, 1), (2, 2)], image=image)
    assert brush.image_size == (640, 360)
    MotionBrush.from_mask(png((534, 300)), [(1, 1), (2, 2)], image=image)  # 533.33: rounding
    with pytest.raises(ImageError, match=r"aspect ratio \(640×360; fit_mask\(\)") as caught:
        MotionBrush.from_mask(png((600, 600)), [(1, 1), (2, 2)], image=image)
    assert caught.value.value == "600×600"


def test_a_url_image_needs_its_size_given() -> None:
    with pytest.raises(TypeError, match=r"image=\(width, height\)"):
        MotionBrush.from_box((0, 0, 10, 10), [(1, 1), (2, 2)],
                             image=Image.from_url("https://example.invalid/cat.png"))


def test_an_empty_polygon_is_refused() -> None:
    with pytest.raises(RequestValidationError, match="cover at least one pixel"):
        MotionBrush.from_polygon([(10, 10), (10.2, 10), (10.1, 10.2)], [(1, 1), (2, 2)], image=SIZE)


def test_a_brush_goes_into_create_as_is() -> None:
    image = Image.from_path(sample_image_path())
    path = [(320 + i, 180 - i / 2) for i in range(0, 300, 3)]  # 100 points, drawn top-left
    brush = MotionBrush.from_box((280, 140, 360, 220), path, image=image)
    with FakeGateway(tokens=(TOKEN,), time_scale=1000) as gw, \
            KlingClient(TOKEN, base_url=gw.base_url) as kling:
        kling.create(image=image, prompt="the boat drifts right", dynamic_masks=[brush])
        (sent,) = [r for r in gw.requests if r.target == "create"]
    assert sent.status == 200
    (mask,) = sent.json["dynamic_masks"]
    points = mask["trajectories"]
    assert len(points) == 77
    assert points[0] == {"x": 320, "y": 179} and points[-1] == {"x": 617, "y": 179 + 148}
    assert PIL.open(io.BytesIO(base64.b64decode(mask["mask"]))).getbbox() == (280, 140, 360, 220)


# --------------------------------------------------------------------------- from a file


def write_json(path, data) -> str:
    import json

    path.write_text(json.dumps(data))
    return str(path)


def test_brushes_load_from_a_small_json_file(tmp_path) -> None:
    from kling_i2v.motion import load_brushes

    mask = PIL.new("L", (1280, 720), 0)  # twice the image's size: the same aspect ratio
    mask.paste(255, (20, 20, 100, 100))
    mask.save(tmp_path / "brush.png")
    file = write_json(tmp_path / "brushes.json", [
        {"box": [40, 60, 200, 220], "path": [[120, 140], [400, 150]]},
        {"polygon": [[100, 50], [500, 120], [250, 330]], "path": [[250, 160], [300, 100]]},
        {"mask": "brush.png", "path": [[30, 30], [60, 30]]},
    ])
    brushes = load_brushes(file, image=SIZE)
    assert [b.trajectory for b in brushes] == [((120, 219), (400, 209)), ((250, 199), (300, 259)),
                                               ((30, 329), (60, 329))]
    assert decode(brushes[0].mask).getbbox() == (40, 60, 200, 220)


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "not valid JSON"),
    ('{"box": [1, 2, 3, 4]}', 'must be {"path"'),
    ('{"box": [1, 2, 3], "path": [[1, 1], [2, 2]]}', "box: must be"),
    ('{"box": [1, 2, 3, 4], "path": [[1, 1]]}', "path: needs at least 2 points"),
    ('{"mask": "missing.png", "path": [[1, 1], [2, 2]]}', "mask: no such file: missing.png"),
])
def test_a_bad_brushes_file_is_told_before_anything_is_sent(tmp_path, content: str,
                                                            problem: str) -> None:
    from kling_i2v.motion import check_brushes

    file = tmp_path / "b.json"
    file.write_text(content)
    (found,) = check_brushes(file)
    assert problem in found and "b.json" in found


def test_a_manifest_column_names_the_brushes_and_fit_moves_them_with_the_picture(
    tmp_path, capsys: pytest.CaptureFixture[str],
) -> None:
    from kling_i2v.cli import main

    banner = PIL.new("RGB", (1500, 500), (90, 120, 150))  # 3:1, padded to 1500×600
    banner.save(tmp_path / "banner.png")
    write_json(tmp_path / "boat.json", {"box": [100, 100, 200, 200],
                                        "path": [[150, 150], [1400, 400]]})
    (tmp_path / "shots.csv").write_text("image,prompt,motion_brushes\nbanner.png,the boat sails,boat.json\n")
    with FakeGateway(tokens=(TOKEN,), time_scale=1000) as gw:
        argv = ["batch", str(tmp_path / "shots.csv"), "--out", str(tmp_path / "out"),
                "--poll-interval", "0.05", "--base-url", gw.base_url, "--token", TOKEN]
        assert main(argv) == 2  # without --fit the banner is refused before anything is sent
        assert gw.count(on="create") == 0
        assert main([*argv, "--fit"]) == 0, capsys.readouterr().err
        (sent,) = [r for r in gw.requests if r.target == "create"]
    (mask,) = sent.json["dynamic_masks"]
    # 50 px of black bar above: top-left y + 50, then bottom-left y = 599 - y
    assert mask["trajectories"] == [{"x": 150, "y": 599 - 200}, {"x": 1400, "y": 599 - 450}]
    assert PIL.open(io.BytesIO(base64.b64decode(mask["mask"]))).getbbox() == (100, 150, 200, 250)
    assert PIL.open(io.BytesIO(base64.b64decode(sent.json["image"]))).size == (1500, 600)


@pytest.mark.parametrize(("content", "problem"), [
    ('{"box": [10, 10, 50, 50], "path": [[20, 20], [700, 20]]}',
     ("b.json: path[1]: must lie on the 640×360 image, top-left origin (x 0 to 639, y 0 to 359) "
      "(got [700, 20])")),
    ('{"box": [10, 10, 641, 50], "path": [[20, 20], [30, 20]]}', "b.json: box[1]: must lie on"),
    ('[{"polygon": [[0, 0], [640, 0], [0, 361]], "path": [[1, 1], [2, 2]]}]',
     "b.json[0]: polygon[2]: must lie on the 640×360 image"),
])
def test_brushes_off_the_image_are_told_from_its_size(tmp_path, content: str, problem: str) -> None:
    from kling_i2v.motion import check_brushes, check_brushes_on

    file = tmp_path / "b.json"
    file.write_text(content)
    assert check_brushes(file) == []  # without the image nothing is wrong
    (found,) = check_brushes_on(file, SIZE)
    assert found.startswith(problem)


def test_brushes_on_the_image_pass_its_size(tmp_path) -> None:
    from kling_i2v.motion import check_brushes_on

    file = tmp_path / "b.json"
    # a path point may reach the last pixel, a box's far edge the image's edge
    file.write_text('{"box": [0, 0, 640, 360], "path": [[0, 0], [639, 359]]}')
    assert check_brushes_on(file, SIZE) == []
    file.write_text("{not json")
    assert check_brushes_on(file, SIZE) == []  # check_brushes tells that one


def test_a_batch_checks_brushes_against_each_rows_image_before_sending(
    tmp_path, capsys: pytest.CaptureFixture[str],
) -> None:
    # the fix round's A2: a point at x=700 on a 640-wide image passed --dry-run and failed
    # at run time, after other rows were created
    from kling_i2v.cli import main

    from tests.imagegen import make_png

    (tmp_path / "wide.png").write_bytes(make_png(640, 360))
    write_json(tmp_path / "off.json", {"box": [10, 10, 50, 50], "path": [[20, 20], [700, 20]]})
    write_json(tmp_path / "on.json", {"box": [10, 10, 50, 50], "path": [[20, 20], [600, 20]]})
    (tmp_path / "shots.csv").write_text("image,prompt,motion_brushes\nwide.png,a,on.json\n"
                                        "wide.png,b,off.json\n")
    with FakeGateway(tokens=(TOKEN,), time_scale=1000) as gw:
        argv = ["batch", str(tmp_path / "shots.csv"), "--out", str(tmp_path / "out"),
                "--poll-interval", "0.05", "--base-url", gw.base_url, "--token", TOKEN]
        assert main([*argv, "--dry-run"]) == 2
        dry = capsys.readouterr()
        assert "1 valid, 1 with problems" in dry.out
        assert ("shots.csv:3: motion_brushes: off.json: path[1]: must lie on the 640×360 image"
                in dry.out)
        assert main(argv) == 2
        assert "off.json: path[1]: must lie on the 640×360 image" in capsys.readouterr().err
        assert gw.count(on="create") == 0
