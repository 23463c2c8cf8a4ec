//! The motion decoder: H.264/H.265 access units in, small grayscale frames out. The
//! project's only user of `ffmpeg-next`.
//!
//! Choices, and why:
//! - **Annex B, not extradata** — see [`bitstream`](super::bitstream): safe code cannot
//!   set `extradata`; the parameter sets from the sample entry are prepended to every
//!   keyframe instead.
//! - **One thread** (`threads = 1`): the Pi's four small cores are shared by several
//!   cameras, and frame threading would add a frame of latency per thread.
//! - **Luma only, box-averaged in plain Rust** to about `target_width` (160) pixels
//!   wide: motion needs no colour, and averaging 4x4 blocks is both the anti-aliasing
//!   and most of the noise filtering, for about one addition per source pixel.
//! - **Idle mode** decodes keyframes only: non-key access units are dropped before
//!   they reach FFmpeg, and the keyframes skip the deblocking filter (nothing decoded
//!   later is predicted from them: leaving idle mode restarts at a keyframe decoded in
//!   full). With a 1 s GOP this costs 7–25 % of decoding everything (`bench` module).
//!   FFmpeg's own `skip_frame = NONKEY` costs about the same, but dropping the units
//!   ourselves saves the copy and makes the resynchronisation explicit;
//!   `skip_frame = NONREF` saves nothing on camera streams, whose P-frames are all
//!   references.
//! - **Deblocking on, outside idle mode**, although skipping it (`skip_loop_filter =
//!   ALL`) would save 17–28 % of FFmpeg's decoding (the benchmark's analysing rows drop
//!   from 0.91–1.08× of `ffmpeg` to 0.74–0.95×). Every P-frame would then be predicted
//!   from pictures the encoder never made, and the error grows until the next keyframe;
//!   box-averaging does not hide it (at 640 px wide its boxes are the codec's own 4x4
//!   blocks). Measured at 160 px against deblocked decoding: 0.05 levels off on average
//!   with 1 s GOPs, but with 10 s GOPs 0.1–2 on average and up to 49 on one pixel. At
//!   the default sensitivity that changed no event in eleven test scenes (still, dark,
//!   noisy, moving), but in eight minutes of still scenes analysed at 5 fps, the dark,
//!   low-contrast, low-bitrate ones turned 36 false active frames and 3 false events
//!   into 103 and 8 at sensitivity 100, and 7 false active frames into 13 at 80
//!   (`bench_deblock`). Short GOPs do not save it: with 1–2 s GOPs the dark scenes
//!   still gained false active frames (6 → 7 at sensitivity 50, 48 → 58 at 80) and a
//!   false event at 80. That is the night-time porch, where a false event costs the
//!   owner more than a fifth of a decoder costs the CPU. (`flags2 = FAST` saves
//!   nothing: in FFmpeg's H.264 decoder it only stops deblocking across the slices of
//!   slice threads.)
//! - **Decode only what an analysed picture needs.** While something moves, every
//!   picture up to the next analysed one must be decoded (camera P-frames are all
//!   references), but the ones after the last analysed picture of a GOP are never
//!   needed: an IDR picture starts afresh. So units nobody asked for wait in a short
//!   queue and are decoded just before the next analysed one, and an IDR throws the
//!   queue away. The analysed pictures are bit for bit the ones full decoding gives
//!   (a unit test compares them); analysing 5 of 10 frames a second with a 1 s GOP
//!   skips one unit in ten, 5 of 25 skips four in twenty-five. This waits until the
//!   decoder has shown for one whole GOP that it outputs each picture when its unit is
//!   sent: with B-frames pictures come out late and out of order, and nothing is
//!   deferred.
//! - **Never decode across a gap**: after an access unit was dropped (idle mode, or
//!   before the first keyframe) or a picture came out damaged (FFmpeg concealed a lost
//!   slice), non-key units are dropped until the next keyframe, so the detector never
//!   sees a picture predicted from missing references — such smears look like motion.
//!
//! A [`MotionDecoder`] is `Send` (it can move to a blocking thread) but not `Sync`.
//! Decoding is CPU-bound: run it with `spawn_blocking` or a dedicated thread, never on
//! an async worker.

use ffmpeg_next as ffmpeg;
use ffmpeg_next::codec::threading;
use ffmpeg_next::format::Pixel;
use ffmpeg_next::Discard;

use super::bitstream::{avcc_to_annex_b, declared_size, is_idr, parse_sample_entry, VideoCodec};
use super::detect::GrayFrame;
use super::MotionError;

/// What idle mode does. Only the benchmark varies it; production uses
/// [`IdlePolicy::PRODUCTION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct IdlePolicy {
    /// Drop non-key access units before they reach the decoder.
    pub drop_non_key: bool,
    /// FFmpeg's `skip_frame` while idle.
    pub skip_frame: Discard,
    /// FFmpeg's `skip_loop_filter` while idle.
    pub skip_loop_filter: Discard,
}

impl IdlePolicy {
    pub const PRODUCTION: IdlePolicy = IdlePolicy {
        drop_non_key: true,
        skip_frame: Discard::Default,
        skip_loop_filter: Discard::All,
    };
}

/// The largest picture a decoder accepts. An SPS may claim any size up to 16384 or
/// more a side, and FFmpeg allocates each picture at the size it is told (16000x16000
/// is ~384 MB): the limit is checked against the sample entry before FFmpeg is
/// opened, given to FFmpeg as `max_pixels` (it then refuses larger parameter sets,
/// also ones sent in-band later, before allocating), and checked again on every
/// picture that comes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PictureLimit {
    pub width: u32,
    pub height: u32,
}

impl PictureLimit {
    /// Motion analysis: 4096x2304 (4K UHD and DCI 4K at 16:9). Analysis streams are
    /// normally sub streams of 640x360 to 1280x720.
    pub const MOTION: PictureLimit = PictureLimit {
        width: 4096,
        height: 2304,
    };
    /// Snapshots of main streams: 8192x4320 (8K).
    pub const SNAPSHOT: PictureLimit = PictureLimit {
        width: 8192,
        height: 4320,
    };

    fn check(self, width: u32, height: u32) -> Result<(), MotionError> {
        if width <= self.width && height <= self.height {
            Ok(())
        } else {
            Err(MotionError::TooLarge {
                width,
                height,
                max_width: self.width,
                max_height: self.height,
            })
        }
    }

    fn max_pixels(self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}

/// At most this many units wait for an analysed picture; beyond, they are decoded
/// anyway (bounded memory when analysis is rare or stops asking).
const MAX_DEFERRED: usize = 64;

/// A unit [`MotionDecoder::decode_for`] has not decoded yet: no analysed picture
/// needed it so far.
struct DeferredUnit {
    data: Vec<u8>,
    is_key: bool,
    pts: i64,
}

/// Whether the decoder outputs each picture from the call that sends its unit, with
/// that unit's time: only then may a unit be deferred on the strength of its own time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutputOrder {
    /// Not yet seen a whole GOP: a keyframe, non-key units, the next keyframe, all in
    /// order. `gop_open`: a keyframe came out in order; `non_key`: then a non-key one.
    Learning {
        gop_open: bool,
        non_key: bool,
    },
    InOrder,
    /// A picture came out late or out of order (B-frames): decode everything eagerly.
    Reorders,
}

/// A decoded picture: 8-bit 4:2:0, planes packed (luma `width` wide, chroma
/// `width.div_ceil(2)` wide).
#[derive(Clone, Debug)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
    /// JPEG range (0–255) rather than video range (16–235).
    pub full_range: bool,
}

/// One camera stream's decoder. See the module documentation.
pub struct MotionDecoder {
    decoder: ffmpeg::decoder::Video,
    codec: VideoCodec,
    length_size: usize,
    /// The sample entry's parameter sets as Annex B, prepended to each keyframe.
    parameter_sets: Vec<u8>,
    target_width: u32,
    idle: bool,
    policy: IdlePolicy,
    /// The decoder holds every reference the next non-key frame may need.
    synced: bool,
    annex_b: Vec<u8>,
    /// The last good picture. Frames are received into `incoming` and swapped in,
    /// because FFmpeg empties the frame it is handed even when it has none to give.
    picture: ffmpeg::frame::Video,
    incoming: ffmpeg::frame::Video,
    scaler: Option<BoxScaler>,
    limit: PictureLimit,
    /// Good pictures out of the decoder so far, downscaled or not.
    frames_decoded: usize,
    /// [`Self::decode_for`] defers units nobody asked for (off only in the benchmark).
    lazy: bool,
    /// Units not decoded yet, in decoding order, and their emptied buffers for reuse.
    deferred: Vec<DeferredUnit>,
    spare: Vec<Vec<u8>>,
    order: OutputOrder,
}

impl MotionDecoder {
    /// A decoder for the stream described by `sample_entry` (an `avc1`/`avc3`/`hvc1`/
    /// `hev1` box with its configuration), producing frames about `target_width` pixels
    /// wide (never wider than the source; 160 is a good value). Pictures larger than
    /// [`PictureLimit::MOTION`] are refused.
    pub fn new(sample_entry: &[u8], target_width: u32) -> Result<Self, MotionError> {
        Self::with_limit(sample_entry, target_width, PictureLimit::MOTION)
    }

    /// [`Self::new`] refusing pictures larger than `limit`.
    pub fn with_limit(
        sample_entry: &[u8],
        target_width: u32,
        limit: PictureLimit,
    ) -> Result<Self, MotionError> {
        let config = parse_sample_entry(sample_entry)?;
        if let Some((width, height)) = declared_size(sample_entry) {
            limit.check(width, height)?;
        }
        let (id, name) = match config.codec {
            VideoCodec::H264 => (ffmpeg::codec::Id::H264, "H.264"),
            VideoCodec::H265 => (ffmpeg::codec::Id::HEVC, "H.265"),
        };
        let init_err = |detail: String| MotionError::DecoderInit {
            codec: name,
            detail,
        };
        ffmpeg::init().map_err(|e| init_err(e.to_string()))?;
        quiet_ffmpeg_logs();
        let codec = ffmpeg::decoder::find(id).ok_or_else(|| init_err("not built in".into()))?;
        let mut context = ffmpeg::codec::Context::new_with_codec(codec);
        // No frame or slice threads: one core's worth per camera, at most.
        context.set_threading(threading::Config::count(1));
        // FFmpeg refuses larger pictures before allocating them (ff_set_dimensions).
        let mut options = ffmpeg::Dictionary::new();
        options.set("max_pixels", &limit.max_pixels().to_string());
        let decoder = context
            .decoder()
            .open_as_with(codec, options)
            .and_then(|d| d.video())
            .map_err(|e| init_err(e.to_string()))?;
        Ok(MotionDecoder {
            decoder,
            codec: config.codec,
            length_size: config.length_size,
            parameter_sets: config.parameter_sets,
            target_width: target_width.max(1),
            idle: false,
            policy: IdlePolicy::PRODUCTION,
            synced: false,
            annex_b: Vec::new(),
            picture: ffmpeg::frame::Video::empty(),
            incoming: ffmpeg::frame::Video::empty(),
            scaler: None,
            limit,
            frames_decoded: 0,
            lazy: true,
            deferred: Vec::new(),
            spare: Vec::new(),
            order: OutputOrder::Learning {
                gop_open: false,
                non_key: false,
            },
        })
    }

    pub fn codec(&self) -> VideoCodec {
        self.codec
    }

    /// Good pictures decoded so far, whether or not they were downscaled.
    pub fn frames_decoded(&self) -> usize {
        self.frames_decoded
    }

    /// Decodes one access unit (AVCC, as ingest delivers it) and returns the luma
    /// frame it completes, downscaled, if the decoder outputs one. Returns `Ok(None)`
    /// for units skipped by idle mode or while waiting for a keyframe.
    ///
    /// An error concerns this unit only; the decoder stays usable and the next
    /// keyframe resynchronises it.
    pub fn decode(
        &mut self,
        data: &[u8],
        is_key: bool,
        pts: i64,
    ) -> Result<Option<GrayFrame>, MotionError> {
        self.decode_for(data, is_key, pts, |_| true)
    }

    /// [`Self::decode`], but a picture is downscaled (and returned) only if `wanted`
    /// says so for its presentation time, and a unit whose picture is not wanted may
    /// wait, undecoded, until a wanted one needs it or an IDR makes it useless (see the
    /// module documentation). `wanted` must answer the same for the same time. At 5
    /// analysed frames a second most pictures are never looked at; the downscale alone
    /// is about a tenth of a 640x360 frame's cost. [`Self::last_picture`] is the last
    /// picture decoded, which is the last wanted one once a wanted one was returned.
    ///
    /// A unit that fails to decode while it waited is logged (debug) and treated as
    /// decoding would have treated it: the decoder waits for the next keyframe.
    pub fn decode_for(
        &mut self,
        data: &[u8],
        is_key: bool,
        pts: i64,
        mut wanted: impl FnMut(i64) -> bool,
    ) -> Result<Option<GrayFrame>, MotionError> {
        if self.lazy && !self.idle && self.order == OutputOrder::InOrder {
            if is_key && is_idr(data, self.length_size, self.codec) {
                // Nothing from here on is predicted from the units waiting.
                self.drop_deferred();
            }
            let decodable = is_key || self.synced || !self.deferred.is_empty();
            if decodable && self.deferred.len() < MAX_DEFERRED && !wanted(pts) {
                let mut buf = self.spare.pop().unwrap_or_default();
                buf.clear();
                buf.extend_from_slice(data);
                self.deferred.push(DeferredUnit {
                    data: buf,
                    is_key,
                    pts,
                });
                return Ok(None);
            }
        }
        self.decode_deferred();
        self.decode_unit(data, is_key, pts, wanted)
    }

    /// Decodes the units waiting, in order, for the one about to be decoded.
    fn decode_deferred(&mut self) {
        let mut units = std::mem::take(&mut self.deferred);
        for unit in units.drain(..) {
            if let Err(e) = self.decode_unit(&unit.data, unit.is_key, unit.pts, |_| false) {
                tracing::debug!("motion: a unit decoded late failed: {e}");
            }
            self.spare.push(unit.data);
        }
        self.deferred = units;
    }

    /// Forgets the units waiting; the buffers are kept for reuse.
    fn drop_deferred(&mut self) {
        self.spare
            .extend(self.deferred.drain(..).map(|unit| unit.data));
    }

    /// Sends one unit to FFmpeg now and takes what comes out.
    fn decode_unit(
        &mut self,
        data: &[u8],
        is_key: bool,
        pts: i64,
        mut wanted: impl FnMut(i64) -> bool,
    ) -> Result<Option<GrayFrame>, MotionError> {
        let ffmpeg_skips_non_key = self.idle
            && matches!(
                self.policy.skip_frame,
                Discard::NonKey | Discard::NonIntra | Discard::All
            );
        if is_key {
            self.synced = true;
        } else if self.idle && self.policy.drop_non_key {
            self.synced = false;
            return Ok(None);
        } else if ffmpeg_skips_non_key {
            // Sent, but FFmpeg discards it: what follows lacks a reference.
            self.synced = false;
        } else if !self.synced {
            return Ok(None);
        }
        let prefix: &[u8] = if is_key { &self.parameter_sets } else { &[] };
        avcc_to_annex_b(data, self.length_size, prefix, pts, &mut self.annex_b)?;
        let mut packet = ffmpeg::Packet::copy(&self.annex_b);
        packet.set_pts(Some(pts));
        packet.set_dts(Some(pts));
        if is_key {
            packet.set_flags(ffmpeg::packet::Flags::KEY);
        }
        let decode_err = |e: ffmpeg::Error| MotionError::Decode {
            pts,
            detail: e.to_string(),
        };
        if let Err(e) = self.decoder.send_packet(&packet) {
            self.synced = false;
            return Err(decode_err(e));
        }
        let mut out = None;
        // Pictures out of this call, and whether each had this unit's time.
        let (mut came_out, mut own_time) = (0usize, true);
        loop {
            match self.decoder.receive_frame(&mut self.incoming) {
                Ok(()) if self.incoming.is_corrupt() || self.incoming.has_decode_errors() => {
                    // Concealed damage (a lost packet) smears until the next keyframe,
                    // and smears look like motion: wait for that keyframe instead.
                    tracing::debug!(pts, "motion: damaged picture; waiting for a keyframe");
                    self.synced = false;
                    came_out += 1;
                    own_time &= self.incoming.timestamp().is_none_or(|t| t == pts);
                }
                Ok(()) => {
                    // max_pixels bounds the area, this the sides: never keep such a
                    // picture (a thumbnail copies whole planes of the last one).
                    let size = (self.incoming.width(), self.incoming.height());
                    if let Err(e) = self.limit.check(size.0, size.1) {
                        self.synced = false;
                        return Err(e);
                    }
                    std::mem::swap(&mut self.picture, &mut self.incoming);
                    self.frames_decoded += 1;
                    let frame_pts = self.picture.timestamp().unwrap_or(pts);
                    came_out += 1;
                    own_time &= frame_pts == pts;
                    out = if wanted(frame_pts) {
                        Some(self.downscale(frame_pts)?)
                    } else {
                        None
                    };
                }
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::error::EAGAIN => break,
                Err(ffmpeg::Error::Eof) => break,
                Err(e) => {
                    self.synced = false;
                    return Err(decode_err(e));
                }
            }
        }
        if !self.idle {
            self.learn_order(is_key, came_out == 1 && own_time);
        }
        Ok(out)
    }

    /// Updates [`OutputOrder`] after a unit decoded outside idle mode (where FFmpeg
    /// may be told to discard units, so nothing coming out says nothing).
    fn learn_order(&mut self, is_key: bool, in_order: bool) {
        self.order = match (self.order, in_order, is_key) {
            (OutputOrder::Reorders, ..) | (_, false, _) => OutputOrder::Reorders,
            (OutputOrder::InOrder, ..) => OutputOrder::InOrder,
            (
                OutputOrder::Learning {
                    gop_open: true,
                    non_key: true,
                },
                true,
                true,
            ) => OutputOrder::InOrder,
            (OutputOrder::Learning { .. }, true, true) => OutputOrder::Learning {
                gop_open: true,
                non_key: false,
            },
            (OutputOrder::Learning { gop_open, .. }, true, false) => OutputOrder::Learning {
                gop_open,
                non_key: gop_open,
            },
        };
    }

    /// Tells the decoder no more units follow and takes the pictures it still holds
    /// (a decoder may keep one back until it sees the next unit), so that
    /// [`Self::last_picture`] is the last unit sent. The decoder is spent afterwards:
    /// for a one-off picture (a snapshot), not for a stream.
    pub fn finish(&mut self) -> Result<(), MotionError> {
        self.decode_deferred();
        let err = |e: ffmpeg::Error| MotionError::Decode {
            pts: 0,
            detail: e.to_string(),
        };
        self.decoder.send_eof().map_err(err)?;
        loop {
            match self.decoder.receive_frame(&mut self.incoming) {
                Ok(()) if self.incoming.is_corrupt() || self.incoming.has_decode_errors() => {}
                Ok(()) => {
                    self.limit
                        .check(self.incoming.width(), self.incoming.height())?;
                    std::mem::swap(&mut self.picture, &mut self.incoming);
                }
                Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::error::EAGAIN => {
                    return Ok(())
                }
                Err(e) => return Err(err(e)),
            }
        }
    }

    /// Switches the cheap mode on or off; see the module documentation. Leaving idle
    /// mode takes effect at the next keyframe (the frames in between cannot be decoded
    /// without the ones that were skipped).
    pub fn set_idle(&mut self, idle: bool) {
        if idle == self.idle {
            return;
        }
        if idle && !self.deferred.is_empty() {
            // Idle mode will drop units anyway; the decoder now lacks these.
            self.drop_deferred();
            self.synced = false;
        }
        self.idle = idle;
        let (frame, loop_filter) = if idle {
            (self.policy.skip_frame, self.policy.skip_loop_filter)
        } else {
            (Discard::Default, Discard::Default)
        };
        self.decoder.skip_frame(frame);
        self.decoder.skip_loop_filter(loop_filter);
    }

    pub fn is_idle(&self) -> bool {
        self.idle
    }

    /// A copy of the last picture the decoder output, in 8-bit 4:2:0 with its planes
    /// packed; for an event's thumbnail. `None` before the first picture, or for other
    /// pixel formats (10-bit, 4:2:2), where a thumbnail is simply not made.
    pub fn last_picture(&self) -> Option<Picture> {
        use ffmpeg::format::Pixel;
        let p = &self.picture;
        if !matches!(p.format(), Pixel::YUV420P | Pixel::YUVJ420P)
            || p.width() == 0
            || p.height() == 0
        {
            return None;
        }
        let (width, height) = (p.width() as usize, p.height() as usize);
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let plane = |index: usize, w: usize, h: usize| -> Option<Vec<u8>> {
            let stride = p.stride(index);
            let data = p.data(index);
            let mut out = Vec::with_capacity(w * h);
            for row in 0..h {
                out.extend_from_slice(data.get(row * stride..row * stride + w)?);
            }
            Some(out)
        };
        Some(Picture {
            width: width as u32,
            height: height as u32,
            y: plane(0, width, height)?,
            u: plane(1, cw, ch)?,
            v: plane(2, cw, ch)?,
            full_range: p.format() == Pixel::YUVJ420P,
        })
    }

    /// For the benchmark and tests: decode every unit as it comes (`false`), to compare.
    #[cfg(test)]
    pub(super) fn set_lazy(&mut self, lazy: bool) {
        if !lazy {
            self.decode_deferred();
        }
        self.lazy = lazy;
    }

    /// For the benchmark: what idle mode does, to compare the alternatives.
    #[cfg(test)]
    pub(super) fn set_idle_policy(&mut self, policy: IdlePolicy) {
        let was_idle = self.idle;
        self.set_idle(false);
        self.policy = policy;
        self.set_idle(was_idle);
    }

    /// The current picture's luma, box-averaged to the target width.
    fn downscale(&mut self, pts: i64) -> Result<GrayFrame, MotionError> {
        let (w, h) = (self.picture.width(), self.picture.height());
        let bytes_per_sample = match self.picture.format() {
            Pixel::YUV420P
            | Pixel::YUVJ420P
            | Pixel::YUV422P
            | Pixel::YUVJ422P
            | Pixel::YUV444P
            | Pixel::YUVJ444P
            | Pixel::YUV440P
            | Pixel::YUVJ440P
            | Pixel::YUV411P
            | Pixel::NV12
            | Pixel::NV21
            | Pixel::GRAY8 => 1,
            Pixel::YUV420P10LE | Pixel::YUV422P10LE | Pixel::YUV444P10LE => 2,
            other => {
                return Err(MotionError::UnsupportedPixelFormat {
                    format: format!("{other:?}"),
                })
            }
        };
        if w == 0 || h == 0 || self.picture.planes() == 0 {
            return Err(MotionError::UnsupportedPixelFormat {
                format: format!("empty {w}x{h} picture"),
            });
        }
        let scaler = match self.scaler.take() {
            Some(s) if s.src == (w, h) => s,
            _ => BoxScaler::new(w, h, self.target_width),
        };
        let stride = self.picture.stride(0);
        let plane = self.picture.data(0);
        let pixels = scaler.scale(plane, stride, bytes_per_sample);
        let frame = GrayFrame {
            width: scaler.dst.0,
            height: scaler.dst.1,
            pixels,
            pts,
        };
        self.scaler = Some(scaler);
        Ok(frame)
    }
}

/// Box-average downscaler for one source size: each output pixel is the mean of the
/// source pixels in its rectangle (the rectangles tile the source exactly).
struct BoxScaler {
    src: (u32, u32),
    dst: (u32, u32),
    /// Source column range of each output column, and row range of each output row.
    cols: Vec<(usize, usize)>,
    rows: Vec<(usize, usize)>,
}

impl BoxScaler {
    fn new(w: u32, h: u32, target_width: u32) -> BoxScaler {
        let dw = target_width.min(w);
        let dh = ((u64::from(h) * u64::from(dw) + u64::from(w) / 2) / u64::from(w)).max(1) as u32;
        let ranges = |src: u32, dst: u32| -> Vec<(usize, usize)> {
            (0..u64::from(dst))
                .map(|i| {
                    let a = i * u64::from(src) / u64::from(dst);
                    let b = (i + 1) * u64::from(src) / u64::from(dst);
                    (a as usize, (b as usize).max(a as usize + 1))
                })
                .collect()
        };
        BoxScaler {
            src: (w, h),
            dst: (dw, dh),
            cols: ranges(w, dw),
            rows: ranges(h, dh),
        }
    }

    /// Scales a luma plane of 8-bit samples, or 16-bit little-endian ones holding 10
    /// bits (reduced to 8). Reads only inside `plane`; rows missing from a short plane
    /// count as black. Sums each band of source rows column by column first (a loop
    /// the compiler vectorises), then the columns of each output pixel.
    fn scale(&self, plane: &[u8], stride: usize, bytes_per_sample: usize) -> Vec<u8> {
        let sw = self.src.0 as usize;
        let mut out = Vec::with_capacity(self.cols.len() * self.rows.len());
        // u16 sums: a band is about `src / dst` rows (≤ 103 for any H.264/H.265 width
        // at 160 wide), far below the 257 rows of 255 that would saturate.
        let mut colsum = vec![0u16; sw];
        for &(y0, y1) in &self.rows {
            colsum.fill(0);
            for y in y0..y1 {
                let start = y * stride;
                let Some(row) = plane.get(start..start + sw * bytes_per_sample) else {
                    continue;
                };
                if bytes_per_sample == 1 {
                    for (c, &v) in colsum.iter_mut().zip(row) {
                        *c = c.saturating_add(u16::from(v));
                    }
                } else {
                    for (c, v) in colsum.iter_mut().zip(row.chunks_exact(2)) {
                        *c = c.saturating_add(u16::from_le_bytes([v[0], v[1]]) >> 2);
                    }
                }
            }
            for &(x0, x1) in &self.cols {
                let n = ((x1 - x0) * (y1 - y0)) as u32;
                let sum: u32 = colsum[x0..x1].iter().map(|&c| u32::from(c)).sum();
                out.push(((sum + n / 2) / n).min(255) as u8);
            }
        }
        out
    }
}

/// FFmpeg logs to stderr, bypassing `tracing` and without naming the camera; on a lossy
/// Wi-Fi camera its concealment messages would flood the journal. Keep only fatal ones:
/// what matters reaches the caller as a [`MotionError`] or a `debug!` with the pts.
/// Global, but this module is the process's only FFmpeg user.
fn quiet_ffmpeg_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| ffmpeg::util::log::set_level(ffmpeg::util::log::Level::Fatal));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_scaler_averages_blocks_and_keeps_aspect() {
        let s = BoxScaler::new(640, 360, 160);
        assert_eq!(s.dst, (160, 90));
        // A 640x360 plane (stride 648) whose 4x4 blocks alternate 0 and 200.
        let stride = 648;
        let mut plane = vec![7u8; stride * 360];
        for y in 0..360 {
            for x in 0..640 {
                plane[y * stride + x] = if (x / 4 + y / 4) % 2 == 0 { 0 } else { 200 };
            }
        }
        let out = s.scale(&plane, stride, 1);
        assert_eq!(out.len(), 160 * 90);
        assert_eq!((out[0], out[1], out[160]), (0, 200, 200));
    }

    #[test]
    fn box_scaler_handles_odd_sizes_and_never_upscales() {
        let s = BoxScaler::new(704, 480, 160);
        assert_eq!(s.dst, (160, 109));
        assert_eq!(s.cols.last(), Some(&(699, 704)));
        assert_eq!(s.rows.last().map(|r| r.1), Some(480));
        let small = BoxScaler::new(100, 50, 160);
        assert_eq!(small.dst, (100, 50));
        let plane = vec![9u8; 100 * 50];
        assert!(small.scale(&plane, 100, 1).iter().all(|&v| v == 9));
        // A plane shorter than claimed reads as black rather than panicking.
        assert_eq!(small.scale(&plane[..100], 100, 1)[0..100], [9; 100]);
    }

    #[test]
    fn box_scaler_reduces_10_bit_samples_to_8() {
        let s = BoxScaler::new(8, 8, 2);
        let plane: Vec<u8> = (0..64).flat_map(|_| 800u16.to_le_bytes()).collect();
        assert_eq!(s.scale(&plane, 16, 2), vec![200; 4]);
    }
}
