//! The login page's words, zh-CN first.

use crate::web::i18n::Lang;

pub struct Words {
    pub login: &'static str,
    pub name: &'static str,
    pub password: &'static str,
    pub submit: &'static str,
    pub wrong: &'static str,
    pub logout: &'static str,
    pub signed_in_as: &'static str,
    pub roles: [&'static str; 3],
}

pub const ZH: Words = Words {
    login: "登录",
    name: "用户名",
    password: "密码",
    submit: "登录",
    wrong: "用户名或密码错误，或账号已停用。",
    logout: "退出登录",
    signed_in_as: "当前用户",
    roles: ["查看员", "巡查员", "管理员"],
};

pub const EN: Words = Words {
    login: "Log in",
    name: "User name",
    password: "Password",
    submit: "Log in",
    wrong: "Wrong name or password, or the account is disabled.",
    logout: "Log out",
    signed_in_as: "Signed in as",
    roles: ["viewer", "inspector", "office admin"],
};

pub fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Zh => &ZH,
        Lang::En => &EN,
    }
}

impl Words {
    pub fn role(&self, role: super::Role) -> &'static str {
        self.roles[role as usize]
    }
}
