// The hoster's surface for the rest of berth: the daemon (its options and start) and where its
// app tree goes. Everything else in hoster/ is its own business.
export { HOSTER_OPTIONS, startHoster, type HosterConfig, type HosterDaemon } from './hoster-daemon.js';
export { chooseHosterDir } from './hoster-dir.js';
