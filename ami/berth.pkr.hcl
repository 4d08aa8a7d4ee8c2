# A berth machine image (AMI): Debian 13 with Node.js, npm, berth and, for the registry role,
# Redis, with the systemd units installed but nothing configured or enabled: each machine
# gets its roles and secrets at first boot from its user-data (see cloud-init/).
#
#   npm pack                                        # in the repository: berth-<version>.tgz
#   packer init ami/berth.pkr.hcl
#   packer build -var tarball=berth-0.1.0.tgz ami/berth.pkr.hcl

packer {
  required_plugins {
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.3.0"
    }
  }
}

variable "region" {
  type        = string
  default     = "eu-west-1"
  description = "AWS region to build in (the image is registered there)."
}

variable "instance_type" {
  type        = string
  default     = "t3.small"
  description = "Instance type of the build machine."
}

variable "roles" {
  type        = string
  default     = "registry,hoster,proxy,balancer"
  description = "What the image can run (comma-separated); each machine enables its own at first boot."
  validation {
    condition     = can(regex("^(registry|hoster|proxy|balancer)(,(registry|hoster|proxy|balancer))*$", var.roles))
    error_message = "The roles are a comma-separated list of registry, hoster, proxy, balancer."
  }
}

variable "tarball" {
  type        = string
  default     = "berth-0.1.0.tgz"
  description = "berth as `npm pack` makes it in the repository."
}

variable "ami_name_prefix" {
  type    = string
  default = "berth"
}

locals {
  stamp = formatdate("YYYYMMDD-hhmmss", timestamp())
}

# Debian's own images: owner 136693071363 publishes debian-13-amd64-<date> in every region.
source "amazon-ebs" "debian" {
  region        = var.region
  instance_type = var.instance_type
  ssh_username  = "admin"
  ami_name      = "${var.ami_name_prefix}-${local.stamp}"
  ami_description = "berth (${var.roles}) on Debian 13"

  source_ami_filter {
    filters = {
      name                = "debian-13-amd64-*"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["136693071363"]
    most_recent = true
  }

  tags = {
    Name          = "${var.ami_name_prefix}-${local.stamp}"
    "berth:roles" = var.roles
  }
}

build {
  sources = ["source.amazon-ebs.debian"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/berth"]
  }

  provisioner "file" {
    source      = var.tarball
    destination = "/tmp/berth/berth.tgz"
  }

  provisioner "shell" {
    execute_command = "sudo -E bash '{{ .Path }}'"
    inline = [
      "set -e",
      "cloud-init status --wait >/dev/null || true",
      # provision.sh and the units come in the tarball (ami/). The same script provisions a
      # server by hand; here it only installs (--image).
      "mkdir -p /tmp/berth/ami && tar -xzf /tmp/berth/berth.tgz -C /tmp/berth/ami --strip-components=2 package/ami",
      "bash /tmp/berth/ami/provision.sh --image --roles ${var.roles} --tarball /tmp/berth/berth.tgz",
      "rm -rf /tmp/berth",
    ]
  }
}
