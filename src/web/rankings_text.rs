//! Words of the rankings' score column (the rankings page and the overview's street table).

use super::i18n::Lang;
use maud::{html, Markup};

pub struct RankingTexts {
    /// Header of the score column.
    pub score: &'static str,
    /// Its tooltip: what the score counts.
    pub score_title: &'static str,
}

const ZH: RankingTexts = RankingTexts {
    score: "超标与限产期间作业分钟/日",
    score_title: "窗口超标分钟与限产告警分钟之和，按有数据的天数平均；街道为其工地的平均值。数据质量告警（断线、故障、标记）不计入排名。",
};

const EN: RankingTexts = RankingTexts {
    score: "exceedance + restriction min/day",
    score_title: "Window-rule exceedance minutes plus minutes under a restriction alert, per day with data; a street is the mean of its sites. Data-quality alerts (gaps, faults, flags) do not rank.",
};

pub fn texts(lang: Lang) -> &'static RankingTexts {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

/// The score column's header cell.
pub fn score_header(lang: Lang) -> Markup {
    let t = texts(lang);
    html! { th.n title=(t.score_title) { (t.score) } }
}
