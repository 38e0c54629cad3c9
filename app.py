"""ResNet Lab: only a router. Pages live in app_pages/, logic in resnet_lab/.

The lesson link is read first, then who this session is (a join form, a login button or nothing at all, as
the class is set up); then the navigation for that person and lesson, who they are in the sidebar, the lesson's
banner, the page."""

import streamlit as st

from resnet_lab.ui.common import device_badge
from resnet_lab.ui.identity import identity_gate, identity_sidebar
from resnet_lab.ui.lesson import lesson_banner, navigation, read_lesson_link

st.set_page_config(page_title="ResNet Lab", page_icon=":material/science:", layout="wide")

read_lesson_link()
who = identity_gate()
nav = navigation(who)
identity_sidebar(who)
lesson_banner(nav, who)
device_badge()
nav.run()
