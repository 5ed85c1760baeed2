//! Replies a platform sends to a device: 9014 data reply, 9011 request reply, 9012 execution result.
//! Each keeps the request's QN, PW and MN, uses ST=91 (system interaction) and Flag=4.

use super::codes::{Cn, QnRtn};
use super::cp::Cp;
use super::segment::{Frame, FLAG_V2017};

/// ST of system interaction frames.
pub const ST_SYSTEM: u16 = 91;

fn reply(request: &Frame, cn: Cn, params: Vec<(String, String)>) -> Frame {
    Frame {
        qn: request.qn.clone(),
        st: ST_SYSTEM,
        cn,
        pw: request.pw.clone(),
        mn: request.mn.clone(),
        flag: Some(FLAG_V2017),
        packet: None,
        cp: Cp {
            params,
            ..Cp::default()
        },
    }
}

/// 9014 data reply to an upload that asked for one (Flag bit 0): `CP=&&&&`.
pub fn data_reply(request: &Frame) -> Frame {
    reply(request, Cn::DataReply, Vec::new())
}

/// 9011 request reply: `CP=&&QnRtn=1&&` for `QnRtn::Ready`.
pub fn request_reply(request: &Frame, rtn: QnRtn) -> Frame {
    let params = vec![("QnRtn".to_owned(), rtn.code().to_string())];
    reply(request, Cn::RequestReply, params)
}

/// 9012 execution result: `CP=&&ExeRtn=1&&` (1 = success).
pub fn execution_result(request: &Frame, exe_rtn: u8) -> Frame {
    let params = vec![("ExeRtn".to_owned(), exe_rtn.to_string())];
    reply(request, Cn::ExecutionResult, params)
}

#[cfg(test)]
mod tests {
    use super::super::frame::{decode, encode, wrap_segment};
    use super::*;

    const UPLOAD: &str = "QN=20170102150000000;ST=39;CN=2011;PW=123456;MN=410108HJ0000000000000001;Flag=5;CP=&&DataTime=20170102150000;a34004-Rtd=245.0,a34004-Flag=N&&";

    #[test]
    fn data_reply_echoes_qn_mn_pw() {
        let req = decode(&wrap_segment(UPLOAD).unwrap()).unwrap();
        assert!(req.wants_reply());
        let bytes = encode(&data_reply(&req)).unwrap();
        let seg = "QN=20170102150000000;ST=91;CN=9014;PW=123456;MN=410108HJ0000000000000001;Flag=4;CP=&&&&";
        assert_eq!(bytes, wrap_segment(seg).unwrap());
        let back = decode(&bytes).unwrap();
        assert_eq!(back.cn, Cn::DataReply);
        assert!(!back.wants_reply());
    }

    #[test]
    fn request_reply_and_execution_result() {
        let req = Frame::parse_segment(UPLOAD).unwrap();
        let seg = request_reply(&req, QnRtn::Ready).encode_segment().unwrap();
        assert_eq!(
            seg,
            "QN=20170102150000000;ST=91;CN=9011;PW=123456;MN=410108HJ0000000000000001;Flag=4;CP=&&QnRtn=1&&"
        );
        let bad_pw = request_reply(&req, QnRtn::BadPassword);
        assert_eq!(bad_pw.cp.param("QnRtn"), Some("3"));
        let exe = execution_result(&req, 1);
        assert_eq!(exe.cn, Cn::ExecutionResult);
        assert_eq!(
            Frame::parse_segment(&exe.encode_segment().unwrap()).unwrap(),
            exe
        );
    }
}
