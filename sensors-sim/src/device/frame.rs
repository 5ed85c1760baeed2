//! A reading as it goes on the wire: JSON or an HJ 212 frame, with the message faults a scenario
//! injects (clock skew, negative values, a bare NaN, truncation).

use crate::faults::MessageFaults;
use crate::scenario::{hj212_mn, DevicePlan, Transport, HJ212_PASSWORD};
use dustwatch_protocol::Reading;

/// The payload of one reading; skew and negative values are applied to `r` itself.
pub(super) fn encode(r: &mut Reading, device: &DevicePlan, mf: &MessageFaults) -> Vec<u8> {
    r.ts += mf.skew_ms;
    if mf.negative {
        r.pm25 = r.pm25.map(|v| -(v.abs().max(1.0)));
        r.pm10 = r.pm10.map(|v| -(v.abs().max(1.0)));
    }
    let (site, id) = (device.site.info.id.as_str(), device.id.as_str());
    let mut payload = match device.transport {
        Transport::Json => r.encode(),
        // Over MQTT the broker acknowledges; over TCP the platform's 9014 reply does.
        Transport::Hj212Mqtt => hj212_frame(r, site, id, false),
        Transport::Hj212Tcp => hj212_frame(r, site, id, true),
    };
    if mf.nan && device.transport == Transport::Json {
        // serde_json writes NaN as null; printf firmware writes a bare NaN token.
        let text = String::from_utf8_lossy(&payload).into_owned();
        let pm25 = r
            .pm25
            .map(|v| format!("\"pm25\":{v:?}"))
            .unwrap_or_default();
        payload = text.replacen(&pm25, "\"pm25\":NaN", 1).into_bytes();
    }
    if mf.malformed {
        payload.truncate(payload.len() / 2);
    }
    payload
}

/// One reading as an HJ 212-2017 minute-data frame (CN 2051, µg/m³, China time), as a monitor
/// sends it; `reply` sets Flag bit 0 (ask for the 9014 data reply). MN and PW are the ones the
/// scenario's registry lists for the device.
fn hj212_frame(r: &dustwatch_protocol::Reading, site: &str, device: &str, reply: bool) -> Vec<u8> {
    use dustwatch_protocol::hj212;
    hj212::from_reading(
        r,
        hj212::Cn::Minute,
        &hj212_mn(site, device),
        HJ212_PASSWORD,
        39,
        &hj212::DeviceProfile::default(),
    )
    .map(|mut frame| {
        if reply {
            frame.flag = Some(hj212::FLAG_V2017 | hj212::FLAG_REPLY);
        }
        frame
    })
    .and_then(|frame| hj212::encode(&frame))
    // A reading the codec cannot express is sent as JSON on the hj212 topic: the aggregator
    // rejects it as a bad frame, which is what a broken bridge would cause.
    .unwrap_or_else(|_| r.encode())
}
