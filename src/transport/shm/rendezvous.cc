#include "transport/shm/rendezvous.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace brainstem::shm {
namespace {

Status SysError(const std::string& what) {
  return InternalError("shm socket: " + what + ": " + std::strerror(errno));
}

constexpr size_t kMaxSocketPath = sizeof(sockaddr_un::sun_path) - 1;

Result<sockaddr_un> MakeAddress(const std::string& path) {
  if (path.empty()) return InvalidArgumentError("shm socket path is empty");
  if (path.size() > kMaxSocketPath) {
    return InvalidArgumentError("shm socket path '" + path + "' is " + std::to_string(path.size()) +
                                " bytes; a Unix socket path holds " + "at most " +
                                std::to_string(kMaxSocketPath) +
                                " (set shm.path to a shorter one)");
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

// Creates `dir` and missing parents with mode 0700. For brainstem's own directory an existing
// one must be a real directory of this uid (in /tmp another user could have created it
// first), and is tightened to 0700.
Status PrepareDirectory(const std::filesystem::path& dir, bool own_directory) {
  if (dir.empty()) return Status::Ok();
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT) return SysError("stat " + dir.string());
    RETURN_IF_ERROR(PrepareDirectory(
        dir.parent_path() == dir ? std::filesystem::path() : dir.parent_path(), false));
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return SysError("mkdir " + dir.string());
    }
    if (lstat(dir.c_str(), &st) != 0) return SysError("stat " + dir.string());
  }
  if (!own_directory) {
    if (!S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) {
      return InvalidArgumentError("shm socket directory " + dir.string() + " is not a directory");
    }
    return Status::Ok();
  }
  if (!S_ISDIR(st.st_mode)) {
    return FailedPreconditionError("shm socket directory " + dir.string() +
                                   " is not a directory (a symlink or file is refused)");
  }
  if (st.st_uid != geteuid()) {
    return FailedPreconditionError("shm socket directory " + dir.string() + " belongs to uid " +
                                   std::to_string(st.st_uid) + ", not to this process (uid " +
                                   std::to_string(geteuid()) + ")");
  }
  if ((st.st_mode & 0777) != 0700 && chmod(dir.c_str(), 0700) != 0) {
    return SysError("chmod 0700 " + dir.string());
  }
  return Status::Ok();
}

// A socket file at `path`: replace it when nobody listens (the server that made it died),
// refuse when somebody does.
Status RemoveStaleSocket(const std::string& path, const sockaddr_un& address) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return SysError("stat " + path);
  }
  if (!S_ISSOCK(st.st_mode)) {
    return InvalidArgumentError("shm socket path " + path + " exists and is not a socket");
  }
  const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe < 0) return SysError("socket");
  const int rc = connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  const int connect_errno = errno;
  close(probe);
  if (rc == 0) {
    return FailedPreconditionError("another server is listening on " + path +
                                   " (stop it, or give this one another shm.name or shm.path, "
                                   "or set shm.enabled=false)");
  }
  if (connect_errno != ECONNREFUSED) {
    errno = connect_errno;
    return SysError("probe connect to " + path);
  }
  if (unlink(path.c_str()) != 0 && errno != ENOENT) return SysError("unlink stale " + path);
  return Status::Ok();
}

}  // namespace

Result<std::string> DefaultSocketPath(const std::string& name, const std::string& xdg_runtime_dir,
                                      uid_t uid) {
  std::string path = xdg_runtime_dir.empty()
                         ? "/tmp/brainstem-" + std::to_string(uid) + "/" + name + ".sock"
                         : xdg_runtime_dir + "/brainstem/" + name + ".sock";
  RETURN_IF_ERROR(MakeAddress(path).status());
  return path;
}

Result<std::unique_ptr<Listener>> Listener::Create(const std::string& path, bool own_directory) {
  ASSIGN_OR_RETURN(sockaddr_un address, MakeAddress(path));
  RETURN_IF_ERROR(PrepareDirectory(std::filesystem::path(path).parent_path(), own_directory));
  RETURN_IF_ERROR(RemoveStaleSocket(path, address));

  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return SysError("socket");
  if (bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    Status s = errno == EADDRINUSE
                   ? FailedPreconditionError("another server is listening on " + path)
                   : SysError("bind " + path);
    close(fd);
    return s;
  }
  // bind creates the file with the process umask; the 0700 directory already keeps other
  // users out, and 0600 keeps it so if the directory is ever opened up.
  struct stat st {};
  if (chmod(path.c_str(), 0600) != 0 || lstat(path.c_str(), &st) != 0) {
    Status s = SysError("chmod 0600 " + path);
    close(fd);
    unlink(path.c_str());
    return s;
  }
  if (listen(fd, 128) != 0) {
    Status s = SysError("listen " + path);
    close(fd);
    unlink(path.c_str());
    return s;
  }
  return std::unique_ptr<Listener>(new Listener(fd, path, st.st_dev, st.st_ino));
}

Listener::Listener(int fd, std::string path, dev_t dev, ino_t ino)
    : fd_(fd), path_(std::move(path)), dev_(dev), ino_(ino) {}

Listener::~Listener() {
  close(fd_);
  struct stat st {};
  if (lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) {
    unlink(path_.c_str());
  }
}

Result<PeerCredentials> GetPeerCredentials(int socket_fd) {
  ucred cred{};
  socklen_t length = sizeof(cred);
  if (getsockopt(socket_fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
    return SysError("SO_PEERCRED");
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

Status SendWelcome(int socket_fd, const WelcomeMessage& welcome, const std::vector<int>& fds) {
  iovec iov{const_cast<WelcomeMessage*>(&welcome), sizeof(welcome)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  if (!fds.empty()) {
    if (fds.size() > 4) return InternalError("SendWelcome: at most 4 descriptors");
    const size_t bytes = sizeof(int) * fds.size();
    std::memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(bytes);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(bytes);
    std::memcpy(CMSG_DATA(cmsg), fds.data(), bytes);
  }
  ssize_t sent;
  do {
    sent = sendmsg(socket_fd, &msg, MSG_NOSIGNAL);
  } while (sent < 0 && errno == EINTR);
  if (sent != static_cast<ssize_t>(sizeof(welcome))) {
    return UnavailableError(std::string("shm: sending the welcome failed: ") +
                            (sent < 0 ? std::strerror(errno) : "short write"));
  }
  return Status::Ok();
}

WelcomeMessage MakeWelcome(ShmStatus status, const std::string& message, uint64_t region_size,
                           uint64_t generation) {
  WelcomeMessage welcome{};
  welcome.magic = kMagic;
  welcome.abi_version = kAbiVersion;
  welcome.status = static_cast<uint32_t>(status);
  welcome.region_size = region_size;
  welcome.generation = generation;
  const size_t n = std::min(message.size(), sizeof(welcome.message) - 1);
  std::memcpy(welcome.message, message.data(), n);
  welcome.message[n] = '\0';
  return welcome;
}

}  // namespace brainstem::shm
